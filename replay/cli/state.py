"""Process-wide CLI state that the commands read: whether ``--verbose`` was given, and the words typed."""


class State:
    verbose = False
    argv: list[str] | None = None  # the arguments main() parsed; None when the app was called some other way
