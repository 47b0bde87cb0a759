import pytest

from video_lavit.processing import select_clip_starts


def regular(total, gop=12):
    return list(range(0, total, gop))


def test_regular_gops_take_every_second_iframe_from_the_second():
    # 120 frames: I-frames 0..108; regular ones with 24 frames left: 0..96 -> 9 starts; 9/2 <= 16.
    assert select_clip_starts(regular(120), 120) == [12, 36, 60, 84]


def test_one_or_two_starts_take_the_first():
    assert select_clip_starts([0], 10) == [0]
    assert select_clip_starts([0, 12], 30) == [0]


def test_short_video_keeps_unfiltered_starts():
    # 30 frames: only start 0 leaves 24 frames -> filtered list too short, fall back to all I-frames [0, 12, 24].
    assert select_clip_starts(regular(30), 30) == [12]


def test_irregular_gops_are_filtered():
    # Scene cuts at 7 and 19/20 break the 12-frame rhythm.
    starts = [0, 7, 19, 20, 32, 44, 56, 68]
    # Regular (next I-frame 12 later): 7, 20, 32, 44, 56 (not 0, 19 or the last); all leave 24 of 90 frames.
    assert select_clip_starts(starts, 90) == [20, 44]
    # With 70 frames only 7, 20, 32 and 44 leave 24 frames.
    assert select_clip_starts(starts, 70) == [20, 44]
    assert select_clip_starts(starts, 60) == [20]


def test_long_video_is_thinned_evenly_to_max_clips():
    total = 12 * 100
    starts = regular(total)
    selected = select_clip_starts(starts, total, max_clips=16)
    candidates = [start for start in starts if start + 24 <= total][:-1][1::2]
    assert len(selected) == 16
    assert selected[0] == candidates[0] and selected[-1] == candidates[-1]
    assert all(start in candidates for start in selected)
    assert selected == sorted(selected)


def test_no_limit_keeps_every_second_candidate():
    total = 12 * 100
    selected = select_clip_starts(regular(total), total, max_clips=None)
    assert len(selected) == 49 and selected[:3] == [12, 36, 60]


def test_boundary_of_max_clips():
    # 32 regular candidates: 32/2 <= 16 -> every second from the second = 16 clips, no thinning.
    total = 12 * 33 + 12
    starts = regular(total)
    assert len(select_clip_starts(starts, total, max_clips=16)) == 16


def test_no_intra_frames_and_bad_arguments():
    assert select_clip_starts([], 50) == []
    with pytest.raises(ValueError):
        select_clip_starts([0], 50, max_clips=0)
