"""Recording what a session tells its views, for tests that drive it with no widget."""

from psygnal import Signal


class Recorder:
    """Every event a session emits (each psygnal Signal of its class and of the classes it extends), in order."""

    def __init__(self, session) -> None:
        self.events: list[tuple[str, tuple]] = []
        names = {name for cls in type(session).__mro__ for name, member in vars(cls).items() if isinstance(member, Signal)}
        for name in sorted(names):
            getattr(session, name).connect(lambda *args, name=name: self.events.append((name, args)))

    def args(self, kind: str) -> list[tuple]:
        """The arguments of each ``kind`` event."""
        return [args for name, args in self.events if name == kind]

    def values(self, kind: str) -> list:
        """The first argument of each ``kind`` event."""
        return [args[0] for args in self.args(kind)]
