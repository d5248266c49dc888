"""The time a provider's report gives (Aliyun's report_time, Tencent's user_receive_time, a call's end) is China
time, in one of two forms; anything else is no time at all, never a guess."""

from __future__ import annotations

import pytest

from channels.callbacks import china_time


@pytest.mark.parametrize("text", ["2017-01-01 00:00:00", "20170101000000", " 2017-01-01 00:00:00 ",
                                  "2017-1-1 0:0:0"])
def test_both_forms_read_as_china_time(text: str) -> None:
    assert china_time(text) == 1483200000.0  # 2017-01-01 00:00:00 +08:00


@pytest.mark.parametrize("text", ["", "soon", "2017-02-30 08:00:00", "2017-01-01 24:00:00", "20171301000000",
                                  "2017-01-01T00:00:00", "2017-01-01 00:00:00+00:00", "2017-01-01", "201701010000"])
def test_what_is_no_such_time_is_none(text: str) -> None:
    assert china_time(text) is None
