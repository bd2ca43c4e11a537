"""One exception type for bad user input, so entrypoints can print one clear line, not a stack trace."""


class RtsegError(Exception):
    """A problem with the user's input (data, config, checkpoint, source) explained in one line."""


class DataError(RtsegError):
    """Missing, corrupt or inconsistent data files."""


class CheckpointError(RtsegError):
    """A checkpoint that does not exist or does not match the configured model."""


class SourceError(RtsegError):
    """A video/camera/image source that cannot be opened or read."""


class BackendUnavailable(RtsegError):
    """An inference backend cannot run on this machine or for this network; the message says why."""


class ExportError(RtsegError):
    """The model cannot be written in the asked format here."""


class SinkError(RtsegError):
    """An output (video file, folder, window, stream) that cannot be written."""


class SplitNotFound(DataError):
    """A dataset without the requested split (e.g. no test labels): callers skip that stage."""


class MissingExtra(RtsegError):
    """An optional dependency that is not installed; the message names the pip command that adds it."""


class OutputExists(RtsegError):
    """An output name that is taken: by a file that was there at the start, or by another run that
    published it first (the name is never replaced unless the user asked, with overwrite=true)."""


class FolderInUse(RtsegError):
    """A run folder another live process holds (two runs given one ``hydra.run.dir``); the message
    names the owner's pid."""
