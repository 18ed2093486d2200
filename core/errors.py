"""Errors the core raises. Every one carries a message fit to show a user."""


class SpecChatError(Exception):
    """Base class of all errors raised on purpose by the core."""


class ModelFileError(SpecChatError):
    """A model file is missing, not GGUF, truncated or otherwise unreadable."""


class ModelLoadError(SpecChatError):
    """llama.cpp refused to load a file (unsupported architecture, bad tensors...)."""


class VocabMismatchError(SpecChatError):
    """The draft model cannot draft for the target: their vocabularies differ."""


class PromptTooLongError(SpecChatError):
    """The prompt does not fit the context window."""


class ConfigError(SpecChatError):
    """A setting has a value the engine cannot use."""


class EngineError(SpecChatError):
    """llama.cpp returned an error while decoding."""


class EngineClosedError(SpecChatError):
    """The engine (or one of its models) was closed; load the models again to go on."""


class LoadCancelledError(SpecChatError):
    """Loading a model was cancelled before it finished (its progress callback said stop)."""


class InsufficientMemoryError(SpecChatError):
    """A model pair was refused before loading: the memory estimate says it won't fit.

    Carries the numbers so a window can show them next to the message.
    """

    def __init__(
        self,
        message: str,
        ram_needed_bytes: int = 0,
        ram_available_bytes: int = 0,
        vram_needed_bytes: int = 0,
        vram_free_bytes: int | None = None,
    ) -> None:
        super().__init__(message)
        self.ram_needed_bytes = ram_needed_bytes
        self.ram_available_bytes = ram_available_bytes
        self.vram_needed_bytes = vram_needed_bytes
        self.vram_free_bytes = vram_free_bytes


class AppFolderError(SpecChatError, OSError):
    """One of SpecChat's own folders cannot be created or written (``SPECCHAT_HOME``
    names a file, a read-only disk). An OSError too, for code that catches those."""
