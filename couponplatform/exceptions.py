"""What services raise: an ApplicationError carries a message fit to show the user."""


class ApplicationError(Exception):
    """A business rule refused the action; `message` is shown to the user as is."""

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class PermissionDeniedError(ApplicationError):
    """The acting user may not do this (views turn it into 403)."""


class InvalidTransitionError(ApplicationError):
    """A status change that the state machine does not allow from the current status."""
