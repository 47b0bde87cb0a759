"""The Gradio demo, tried as a person would: in headless Chromium (Debian's, driven by Playwright), upload a world
video, ask about it, read the answer and the pictures, take a screenshot."""

import shutil
import socket

import pytest
from PIL import Image

from video_lavit.training.world import make_world_video


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            page.locator("#video-upload input[type=file]").set_input_files(video)
            page.get_by_text("green.mp4").first.wait_for(timeout=60_000)  # the upload is done
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
