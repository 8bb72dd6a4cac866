"""Opening capture files: gzip or not, the file is closed with the stream."""

import gzip
import os
import struct

import pytest

from producers.capture import open_capture
from producers.exceptions import CaptureError

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("packed", [False, True])
def test_closing_the_stream_closes_the_file(tmp_path, packed):
    path = tmp_path / ("c.pcap.gz" if packed else "c.pcap")
    path.write_bytes(gzip.compress(PCAP_HEADER) if packed else PCAP_HEADER)
    before = open_files()
    stream, kind = open_capture(path)
    assert kind == "pcap"
    assert stream.read(4) == PCAP_HEADER[:4]
    stream.close()
    assert open_files() == before


def test_a_broken_gzip_is_refused_and_leaves_nothing_open(tmp_path):
    path = tmp_path / "broken.pcap.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 40)  # gzip magic, then no deflate data
    before = open_files()
    with pytest.raises(CaptureError, match="does not decompress"):
        open_capture(path)
    assert open_files() == before
