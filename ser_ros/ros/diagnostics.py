"""Build /diagnostics messages (diagnostic_msgs/DiagnosticArray) from a dict of values.

API (all a node needs)::

    from ser_ros.ros.diagnostics import OK, WARN, ERROR, create_diagnostics_publisher, make_status

    publisher = create_diagnostics_publisher(node)         # on /diagnostics, EVENT_QOS
    publisher.publish(make_status(node, WARN, 'dropping utterances',
                                  {'state': 'busy', 'dropped': 3, 'rate_hz': 49.8}))

- ``level`` is ``OK``, ``WARN``, ``ERROR`` or ``STALE`` (ints 0..3, as in DiagnosticStatus) or
  the same names as strings (case-insensitive).
- ``values`` become KeyValue pairs in insertion order: floats are written with 6 significant
  digits, booleans as ``true``/``false``, None as an empty string, anything else with ``str``.
- The status is named ``'<node name>: <name>'`` (``name`` defaults to ``'status'``), with the
  node's fully qualified name as ``hardware_id`` unless one is given; the array's header stamp
  is the node clock's now (sim time included).
"""

from __future__ import annotations

from collections.abc import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.publisher import Publisher

from ser_ros.ros.topics import DIAGNOSTICS, qos_for

OK = 0
WARN = 1
ERROR = 2
STALE = 3
LEVEL_NAMES = {'OK': OK, 'WARN': WARN, 'ERROR': ERROR, 'STALE': STALE}
DEFAULT_STATUS_NAME = 'status'


def level_byte(level: int | str) -> bytes:
    """Return DiagnosticStatus.level (one-byte ``bytes``) for ``OK``..``STALE`` or their names."""
    if isinstance(level, str):
        key = level.strip().upper()
        if key not in LEVEL_NAMES:
            raise ValueError(f'unknown diagnostic level {level!r}; use one of '
                             f'{", ".join(LEVEL_NAMES)}')
        level = LEVEL_NAMES[key]
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVEL_NAMES.values():
        raise ValueError(f'diagnostic level must be 0..3 (OK, WARN, ERROR, STALE), got {level!r}')
    return bytes([level])


def value_text(value: object) -> str:
    """Format one diagnostic value (floats to 6 significant digits, booleans lower-case)."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        return f'{value:.6g}'
    return str(value)


def make_status(node: Node, level: int | str, message: str,
                values: Mapping[str, object] | None = None, name: str = DEFAULT_STATUS_NAME,
                hardware_id: str | None = None) -> DiagnosticArray:
    """Build a one-status DiagnosticArray for ``node``, stamped with the node clock's now."""
    status = DiagnosticStatus()
    status.level = level_byte(level)
    status.name = f'{node.get_name()}: {name}'
    status.message = str(message)
    status.hardware_id = node.get_fully_qualified_name() if hardware_id is None else hardware_id
    status.values = [KeyValue(key=str(key), value=value_text(value))
                     for key, value in (values or {}).items()]
    array = DiagnosticArray()
    array.header.stamp = node.get_clock().now().to_msg()
    array.status = [status]
    return array


def create_diagnostics_publisher(node: Node) -> Publisher:
    """Create the DiagnosticArray publisher on /diagnostics with the project's QoS."""
    return node.create_publisher(DiagnosticArray, DIAGNOSTICS, qos_for(DIAGNOSTICS).to_rclpy())


def status_values(array: DiagnosticArray) -> dict[str, str]:
    """Return the key-value pairs of the first status of ``array`` as a dict (for tests)."""
    if not array.status:
        return {}
    return {pair.key: pair.value for pair in array.status[0].values}
