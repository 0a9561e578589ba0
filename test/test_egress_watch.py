"""The DDS egress watch recognises RTPS datagrams in raw Ethernet frames."""

from __future__ import annotations

import struct

from egress_watch import RTPS_MAGIC, DdsEgressWatch, _rtps_payload_offset

MAC = b'\x00\x11\x22\x33\x44\x55'


def _ipv4_udp_frame(payload: bytes, protocol: int = 17) -> bytes:
    ip_header = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + 8 + len(payload), 0, 0, 64, protocol,
                            0, b'\x0a\x00\x00\x01', b'\xef\xff\x00\x01')
    udp_header = struct.pack('!HHHH', 7400, 7400, 8 + len(payload), 0)
    return MAC + MAC + b'\x08\x00' + ip_header + udp_header + payload


def _ipv6_udp_frame(payload: bytes) -> bytes:
    ip_header = struct.pack('!IHBB16s16s', 0x60000000, 8 + len(payload), 17, 64, b'\x00' * 16,
                            b'\xff\x02' + b'\x00' * 14)
    udp_header = struct.pack('!HHHH', 7400, 7400, 8 + len(payload), 0)
    return MAC + MAC + b'\x86\xdd' + ip_header + udp_header + payload


def test_finds_the_udp_payload_of_ipv4_and_ipv6_frames():
    for frame in (_ipv4_udp_frame(RTPS_MAGIC + b'\x02\x03'), _ipv6_udp_frame(RTPS_MAGIC)):
        offset = _rtps_payload_offset(frame)
        assert offset is not None and frame[offset:offset + 4] == RTPS_MAGIC


def test_ignores_tcp_and_short_or_foreign_frames():
    assert _rtps_payload_offset(_ipv4_udp_frame(RTPS_MAGIC, protocol=6)) is None
    assert _rtps_payload_offset(b'\x00' * 10) is None
    assert _rtps_payload_offset(MAC + MAC + b'\x08\x06' + b'\x00' * 28) is None  # ARP


def test_watch_stops_cleanly_when_it_never_started():
    assert DdsEgressWatch().stop() == []
