"""Error types whose messages are fit to show a user on one line."""


class InputError(ValueError):
    """Bad user input: a missing, unreadable, corrupt or unsuitable file, URL or value.

    The message always names the input and the reason, on one line, so the command line can
    print it as is (exit status 2) and a notebook or web page can show it without a traceback.

    Parameters
    ----------
    source : str or path-like
        The input at fault (file path, URL, column name, ...).
    reason : str
        Why it cannot be used.
    """

    def __init__(self, source, reason):
        self.source = str(source)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.source}: {self.reason}")


class AudioError(InputError):
    """An audio input that cannot be decoded or is unfit for feature extraction."""


class DataIntegrityError(InputError):
    """An embedded or stored data file that does not match what the workspace expects."""


class StoreError(InputError):
    """The label store cannot do what was asked; the message names the file and what to do.

    Subclasses tell the three failures a user can act on apart. The web page answers 503 with
    the message; the labeler shows it in its status line; the command line exits 2.
    """


class StoreReadOnlyError(StoreError):
    """The store file (or its folder) is not writable: it opens for reading only."""


class StoreFullError(StoreError):
    """The disk (or the store's size limit) is full: nothing more can be written."""


class StoreLockedError(StoreError):
    """Another process held the store's write lock for longer than the timeout."""
