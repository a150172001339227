from diffusion_studio.core.durations import clock


def test_durations_read_as_a_clock():
    assert [clock(s) for s in (-3, 0, 59.9, 61, 3599, 3600, 36_125)] == ["0:00", "0:00", "0:59", "1:01", "59:59", "1:00:00", "10:02:05"]
