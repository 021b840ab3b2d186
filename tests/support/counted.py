"""A unittest.TestCase whose assert* calls are counted, so a suite can say
how much it checked ("44 tests, 954 assertions"), not only how many tests
ran. Only outermost calls count: an assert that calls another is one.

    from counted import Counted, assertions
    class ChartTest(Counted): ...
    print("%d assertions" % assertions())
"""
import unittest

_count = [0]


def assertions():
    """How many assert* calls the Counted tests of this process made."""
    return _count[0]


class Counted(unittest.TestCase):
    """TestCase whose assert* calls are counted (outermost calls only)."""
    _depth = 0

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name.startswith("assert") and callable(attr):
            def counted(*a, **kw):
                outer = Counted._depth == 0
                Counted._depth += 1
                try:
                    return attr(*a, **kw)
                finally:
                    Counted._depth -= 1
                    if outer:
                        _count[0] += 1
            return counted
        return attr
