"""Declare a node's parameters with descriptions and ranges, read them once and validate them.

API::

    from ser_ros.ros.params import ParameterError, Spec, declare_parameters

    SPECS = (
        Spec('frame_ms', 20, 'VAD frame length in ms', choices=(10, 20, 30)),
        Spec('hangover_ms', 100.0, 'pause kept open after speech, ms', low=0.0, high=2000.0),
        Spec('device', '', 'input device: name substring or index; empty = default'),
    )
    values = declare_parameters(node, SPECS)    # {'frame_ms': 20, ...}; raises ParameterError

- Every parameter gets a ParameterDescriptor with its description (plus the allowed range or
  choices), an integer/floating-point range when both bounds are given, and ``read_only``
  (parameters are read once at start; a later ``set_parameters`` is refused by rclpy).
- Float parameters accept integer values (``-p hangover_ms:=100``) and return floats.
- ``ParameterError`` (a ValueError) names the parameter, the value and what is allowed, e.g.
  ``parameter 'frame_ms' must be one of 10, 20, 30, got 25``. ``main()`` logs it and exits with
  ``EXIT_BAD_PARAMETER`` (see ``refuse``) instead of printing a traceback.
- ``int_as_text=True`` lets a str parameter be given as an integer too (``-p device:=3``);
  the value is returned as text (``'3'``).
- ``check`` is an optional callable ``value -> str | None`` for extra rules; it returns the
  reason the value is wrong, or None when it is fine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import rclpy.logging
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node

# Exit status of a node refused at start for a bad parameter (2: usage error, as argparse).
EXIT_BAD_PARAMETER = 2
ParameterValue = bool | int | float | str | list


class ParameterError(ValueError):
    """A parameter value that the node refuses; the message names the parameter."""


@dataclass(frozen=True)
class Spec:
    """One parameter: name, default (its type is the parameter's), description, constraints."""

    name: str
    default: ParameterValue
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None
    # For a str parameter that may also be given as a number (a device index): '3' or 3.
    int_as_text: bool = False

    @property
    def kind(self) -> type:
        """Python type of the value (bool, int, float, str or list)."""
        return type(self.default)

    def constraint_text(self) -> str:
        """Human-readable allowed values ('' when anything of the right type goes)."""
        if self.choices is not None:
            return 'one of ' + ', '.join(map(str, self.choices))
        if self.low is not None and self.high is not None:
            return f'within {self.low:g}..{self.high:g}'
        if self.low is not None:
            return f'>= {self.low:g}'
        if self.high is not None:
            return f'<= {self.high:g}'
        return ''

    def descriptor(self) -> ParameterDescriptor:
        """ParameterDescriptor with description, constraints and range for introspection."""
        constraint = self.constraint_text()
        descriptor = ParameterDescriptor(
            name=self.name, description=self.description, read_only=True,
            additional_constraints=constraint)
        if self.kind is float:
            # Integers are accepted for float parameters (YAML '100' for 100.0); checked below.
            descriptor.dynamic_typing = True
            if self.low is not None and self.high is not None:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(self.low), to_value=float(self.high), step=0.0)]
        elif self.kind is str and self.int_as_text:
            descriptor.dynamic_typing = True
        elif self.kind is int and self.low is not None and self.high is not None:
            descriptor.integer_range = [IntegerRange(
                from_value=int(self.low), to_value=int(self.high), step=0)]
        return descriptor

    def validate(self, value: object) -> ParameterValue:
        """Return ``value`` converted to the parameter's type, or raise ParameterError."""
        value = self._convert(value)
        reason = None
        if self.choices is not None and value not in self.choices:
            reason = f'must be {self.constraint_text()}'
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            too_low = self.low is not None and value < self.low
            too_high = self.high is not None and value > self.high
            if (isinstance(value, float) and not math.isfinite(value)) or too_low or too_high:
                reason = f'must be {self.constraint_text() or "finite"}'
        if reason is None and self.check is not None:
            reason = self.check(value)
        if reason is not None:
            raise ParameterError(f'parameter {self.name!r} {reason}, got {value!r}')
        return value

    def _convert(self, value: object) -> ParameterValue:
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if (self.kind is str and self.int_as_text and isinstance(value, int)
                and not isinstance(value, bool)):
            return str(value)
        if self.kind is list and isinstance(value, (list, tuple)):
            return list(value)
        if type(value) is not self.kind:
            raise ParameterError(f'parameter {self.name!r} must be of type '
                                 f'{self.kind.__name__}, got {value!r}')
        return value


def declare_parameters(node: Node, specs: Sequence[Spec]) -> dict[str, ParameterValue]:
    """Declare ``specs`` on ``node``, read and validate them; return ``{name: value}``.

    Raises ParameterError for the first refused value (rclpy's own type and range errors are
    turned into the same clear message).
    """
    values: dict[str, ParameterValue] = {}
    for spec in specs:
        try:
            parameter = node.declare_parameter(spec.name, spec.default, spec.descriptor())
        except ParameterException as error:
            allowed = spec.constraint_text()
            hint = f' ({spec.kind.__name__}{", " + allowed if allowed else ""})'
            raise ParameterError(f'parameter {spec.name!r} refused{hint}: {error}') from None
        values[spec.name] = spec.validate(parameter.value)
    return values


def refuse(node: Node | str, error: ParameterError) -> int:
    """Log a refused parameter as one clear error line; return the exit status for main().

    ``node`` is the node, or its name when the node was destroyed already.
    """
    logger = rclpy.logging.get_logger(node) if isinstance(node, str) else node.get_logger()
    logger.fatal(f'invalid configuration, not starting: {error}')
    return EXIT_BAD_PARAMETER
