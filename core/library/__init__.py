"""The local model library: scanning, draft pairing and memory-fit estimates."""

from core.library.folders import add_user_folder, remove_user_folder, user_folders
from core.library.memory import MemoryFit, SystemMemory, check_pair_fit, read_system_memory
from core.library.pairing import DraftCandidate, DraftPairing, find_local_drafts
from core.library.scan import ModelEntry, ModelLibrary, ModelSource, default_hf_cache_dir

__all__ = [
    "DraftCandidate",
    "DraftPairing",
    "MemoryFit",
    "ModelEntry",
    "ModelLibrary",
    "ModelSource",
    "SystemMemory",
    "add_user_folder",
    "check_pair_fit",
    "default_hf_cache_dir",
    "find_local_drafts",
    "read_system_memory",
    "remove_user_folder",
    "user_folders",
]
