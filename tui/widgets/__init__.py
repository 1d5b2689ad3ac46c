"""The panes of the app's tabs and the status line."""
from .arc import ArcPane
from .ask import AskPane
from .documents import DocumentsPane
from .forgetting import ForgettingPane
from .history import HistoryPane
from .learn import LearnPane
from .status import StatusLine

__all__ = ["ArcPane", "AskPane", "DocumentsPane", "ForgettingPane", "HistoryPane", "LearnPane", "StatusLine"]
