"""Watch the machine's network interfaces for DDS traffic that leaves the machine.

ROS tests must keep every DDS packet on loopback. An AF_PACKET socket (root only) sees each
frame the kernel sends on a non-loopback interface; any outgoing UDP datagram that carries
RTPS (the DDS wire protocol) counts as a leak.
"""

from __future__ import annotations

import os
import socket
import struct
import threading

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
IPPROTO_UDP = 17
RTPS_MAGIC = b'RTPS'
ETHERNET_HEADER = 14
IPV6_HEADER = 40
UDP_HEADER = 8


def _rtps_payload_offset(frame: bytes) -> int | None:
    """Offset of the UDP payload in an Ethernet frame, or None when it is not UDP."""
    if len(frame) < ETHERNET_HEADER:
        return None
    (ethertype,) = struct.unpack('!H', frame[12:14])
    if ethertype == ETHERTYPE_IPV4 and len(frame) >= ETHERNET_HEADER + 20:
        header_length = (frame[ETHERNET_HEADER] & 0x0F) * 4
        if frame[ETHERNET_HEADER + 9] != IPPROTO_UDP:
            return None
        return ETHERNET_HEADER + header_length + UDP_HEADER
    if ethertype == ETHERTYPE_IPV6 and len(frame) >= ETHERNET_HEADER + IPV6_HEADER:
        if frame[ETHERNET_HEADER + 6] != IPPROTO_UDP:
            return None
        return ETHERNET_HEADER + IPV6_HEADER + UDP_HEADER
    return None


class DdsEgressWatch:
    """Count RTPS datagrams sent on any non-loopback interface while running."""

    def __init__(self) -> None:
        self.leaked: list[str] = []
        self.available = os.geteuid() == 0 and hasattr(socket, 'AF_PACKET')
        self._socket: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the packet socket and watch in a background thread."""
        if not self.available:
            return
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._socket.settimeout(0.2)
        self._thread = threading.Thread(target=self._watch, name='dds-egress-watch', daemon=True)
        self._thread.start()

    def stop(self) -> list[str]:
        """Stop watching; return a description of each leaked packet."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._socket is not None:
            self._socket.close()
        return self.leaked

    def _watch(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                frame, address = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            interface, _protocol, packet_type = address[0], address[1], address[2]
            if interface == 'lo' or packet_type != PACKET_OUTGOING:
                continue
            offset = _rtps_payload_offset(frame)
            if offset is not None and frame[offset:offset + 4] == RTPS_MAGIC:
                self.leaked.append(f'{len(frame)}-byte RTPS frame out of {interface}')
