"""Process-wide CLI state that the commands read: only whether ``--verbose`` was given."""


class State:
    verbose = False
