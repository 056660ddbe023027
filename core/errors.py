"""Errors a person may see. Each carries one human line; adapters show `str(error)` and nothing else."""


class UserError(Exception):
    """Something the person can fix or should know about. The message is one line, ready to show."""


class BadImage(UserError):
    """The bytes sent are not an image we accept (format, size, damage)."""


class BadParams(UserError):
    """An edit parameter is out of range or malformed."""


class UnsafeImage(UserError):
    """The safety checker flagged the result; nothing is recorded."""


class EditCancelled(UserError):
    """The person cancelled the edit while it waited or ran."""


class ModelUnavailable(UserError):
    """The model could not be loaded (offline, wrong path, broken file)."""


class PictureGone(UserError):
    """A node's image file is missing from the image store (deleted by hand, a lost disk): nothing can use it."""

    def __init__(self) -> None:
        super().__init__("That picture is no longer stored, so I left everything as it was. "
                         "/history shows what is still there; or send a new photo.")


class StorageUnavailable(UserError):
    """The image store cannot be reached (an outage, not a missing picture): raised from the store's own error, so
    bot.distributed.outage still sees which service is out."""

    def __init__(self) -> None:
        super().__init__("Storage is not answering right now, so I left everything as it was. "
                         "Please try again in a minute.")


class ShuttingDown(UserError):
    """The bot is stopping: the edit did not start (or could not finish in the grace period) and is kept, to be
    offered again once the bot is back."""


class QueueFull(UserError):
    """Too many edits waiting for this person or in total."""


SOMETHING_WENT_WRONG = "Something went wrong on my side; nothing was changed. Please try again."
"""What a person is told when answering them hit a bug (any front-end, any command)."""

EDIT_FAILED_ON_OUR_SIDE = "The edit failed on my side; nothing was changed. Please try again."
"""What a person is told when their edit hit a bug or a device failure (whichever queue ran it)."""

INTERNAL_FAILURE = "internal"


def failure_kind(error: BaseException) -> str:
    """How an edit's failure is counted (metrics) and kept (the job row): the UserError's class name (EditCancelled,
    UnsafeImage, ...), or "internal" for a bug or a device failure."""
    return type(error).__name__ if isinstance(error, UserError) else INTERNAL_FAILURE
