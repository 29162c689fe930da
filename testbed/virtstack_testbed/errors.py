"""The one error type the testbed raises for things a person must fix."""


class TestbedError(Exception):
    """A failure with a cause and a fix, printed as one line by the CLI."""

    def __init__(self, cause: str, fix: str) -> None:
        super().__init__(f"{cause} (fix: {fix})")
        self.cause = cause
        self.fix = fix
