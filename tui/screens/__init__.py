"""Modal screens: confirmation, the file picker, pasting text."""
from .confirm import ConfirmScreen
from .paste import PasteScreen
from .picker import FilePicker

__all__ = ["ConfirmScreen", "FilePicker", "PasteScreen"]
