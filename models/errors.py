"""Errors a user can act on. The command line prints their message as one line and exits 2;
the app shows it in the window. Anything else is a bug."""


class LivevisError(Exception):
    """Base class: the message says what went wrong and what to do."""


class ModelNotFoundError(LivevisError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelError(LivevisError):
    """A user's model that cannot be built, or does not run on the input it was described with."""


class WeightsError(LivevisError):
    """Trained weights cannot be had, or a weights file does not fit the model."""


class UnsafeModelFileError(LivevisError):
    """A model file that would run code of its own as it loads (a pickle, compiled code, Python source):
    opened only where the user says they trust it."""


class LayerNotFoundError(LivevisError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ChannelOutOfRangeError(LivevisError, IndexError):
    pass


class OptionError(LivevisError, ValueError):
    """A view option outside what it can be (normalisation, overlay mode, gamma, boost)."""


class ColormapError(OptionError):
    pass


class InputError(LivevisError):
    """An image, video or camera that cannot be read."""


class OutputError(LivevisError):
    """A file or folder that cannot be written."""
