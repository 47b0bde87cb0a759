"""The Gradio demo, tried as a person would: in headless Chromium (Debian's, driven by Playwright), upload a world
video, ask about it, read the answer and the pictures, take a screenshot; then, with a tiny generation checkpoint and
detokenizer, make a video from a prompt and animate an uploaded picture, and play what came back."""

import io
import os
import shutil
import socket
import sys

import av
import pytest
from PIL import Image

from video_lavit.training.world import make_world_video

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pipelines"))
from test_generation import SIZE, folders  # noqa: E402, F401  (the tiny generation checkpoint and detokenizer)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def open_demo(page, port: int) -> None:
    """Open the demo and wait until its scripts have loaded (on a loaded machine the components can still be
    mounting when the page has loaded)."""
    page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
    page.wait_for_load_state("networkidle", timeout=60_000)


def upload(page, selector: str, path, shown: str) -> None:
    """Give `path` to the file input under `selector`, then wait until that component holds `shown` (a CSS selector):
    the upload is done."""
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))
    try:
        page.wait_for_function(
            "([root, shown]) => { const element = document.querySelector(root); return element !== null && "
            "element.querySelector(shown) !== null; }",
            arg=[selector, shown],
            timeout=60_000,
        )
    except Exception:
        print(
            f"{selector} when the wait ended:", page.evaluate(f"() => document.querySelector('{selector}').outerHTML")
        )
        raise


@pytest.mark.slow
def test_chat_about_an_uploaded_video_in_a_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    from video_lavit.demo import launch

    chromium = shutil.which("chromium")
    assert chromium, "the demo test needs Debian's chromium (scripts/test.sh installs it)"
    video = make_world_video("green", "triangle", "down", path=tmp_path / "green.mp4")
    port = free_port()
    demo = launch(port=port, block=False)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            open_demo(page, port)
            upload(page, "#video-upload", video, 'a[download="green.mp4"]')  # its download link: uploaded
            page.locator("#question textarea").fill("What colour is the shape?")
            page.locator("#ask").click()
            page.wait_for_function(
                "() => document.querySelector('#answer textarea').value.length > 0", timeout=120_000
            )
            answer = page.locator("#answer textarea").input_value()
            page.locator("#sheet img").first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
    assert answer == "green"
    screenshot = Image.open(tmp_path / "demo.png")
    assert screenshot.width >= 1000 and screenshot.height >= 500


def played_frames(page, selector: str) -> int:
    """The frames of the video the page shows in `selector` (fetched from the demo's server by its own URL)."""
    source = page.locator(f"{selector} video").first.get_attribute("src")
    response = page.request.get(source)
    assert response.ok, source
    with av.open(io.BytesIO(response.body())) as container:
        return sum(1 for _ in container.decode(video=0))


def make_video(page, button: str, status: str, video: str) -> int:
    """Click `button`, wait for the `status` box to read "done", and count the frames of the video shown."""
    page.locator(button).click()
    page.wait_for_function(f"() => document.querySelector('{status} textarea').value.length > 0", timeout=120_000)
    assert page.locator(f"{status} textarea").input_value() == "done"
    page.locator(f"{video} video").first.wait_for(timeout=60_000)
    return played_frames(page, video)


@pytest.mark.slow
def test_text_to_video_and_image_to_video_in_a_browser(folders, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from video_lavit.demo import DemoModels, build_demo

    model_dir, detokenizer = folders
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "first.png")
    port = free_port()
    demo = build_demo(DemoModels(str(model_dir), str(detokenizer), keyframe_num_inference_steps=1, **SIZE))
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                                 args=["--no-sandbox"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            open_demo(page, port)
            page.get_by_role("tab", name="Text-to-video").click()
            page.locator("#prompt textarea").fill("a red boat")
            text_to_video = make_video(page, "#make", "#status", "#made")
            page.screenshot(path=str(tmp_path / "text-to-video.png"), full_page=True)
            page.get_by_role("tab", name="Image-to-video").click()
            upload(page, "#first-frame", tmp_path / "first.png", "img")
            image_to_video = make_video(page, "#animate", "#animate-status", "#animated")
            page.screenshot(path=str(tmp_path / "image-to-video.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
    assert (text_to_video, image_to_video) == (24, 24)
    assert Image.open(tmp_path / "image-to-video.png").width >= 1000
