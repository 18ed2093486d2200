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
