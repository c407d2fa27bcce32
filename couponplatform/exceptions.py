"""What services raise: an ApplicationError carries a message fit to show the user."""


class ApplicationError(Exception):
    """A business rule refused the action; `message` is shown to the user as is.

    A message marked for translation lazily is read when raised, so it says it in the
    language of the request (or of the recipient a task works for) that raised it."""

    def __init__(self, message: str, *, extra: dict | None = None):
        message = str(message)
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class PermissionDeniedError(ApplicationError):
    """The acting user may not do this (views turn it into 403)."""


class InvalidTransitionError(ApplicationError):
    """A status change that the state machine does not allow from the current status."""
