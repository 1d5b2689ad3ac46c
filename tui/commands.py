"""Command palette entries (^p) for the main actions."""
from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

COMMANDS = [
    ("Learn a file or folder…", "Pick a document in a file browser and learn it", "add_file"),
    ("Paste text to learn…", "Type or paste a text; its first line is the title", "paste"),
    ("Learn the sample document", "The bundled SQuAD paragraph about Warsaw's theatres", "learn_sample"),
    ("Cancel the running ingest", "Stop now; nothing is committed", "cancel"),
    ("Probe all documents now", "Re-run every stored probe against the current student", "probe"),
    ("Roll back the selected edit…", "On the History tab: undo an edit and every later one", "rollback"),
    ("Go to Documents", "Tab 1", "tab('documents')"),
    ("Go to Learn", "Tab 2: the live view of an ingest", "tab('learn')"),
    ("Go to History", "Tab 3: every edit", "tab('history')"),
    ("Go to Forgetting", "Tab 4: the retention heatmap, ACC and BWT", "tab('forgetting')"),
    ("Go to Ask", "Tab 5: student vs base, side by side", "tab('ask')"),
]


class SealCommands(Provider):
    async def discover(self) -> Hits:
        for name, help_text, action in COMMANDS:
            yield DiscoveryHit(name, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in COMMANDS:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(self.app.run_action, action), help=help_text)
