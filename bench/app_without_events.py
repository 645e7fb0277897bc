"""The service as `api.main:app`, except that it sends no wake-up after a commit: what a create
costs without live updates, for bench/live_updates.py (which also disables the outbox triggers
during those rounds). Never served outside the benchmark."""

from api.main import create_app
from api.tasks.events import TaskEvents


def _no_wake_up(self: TaskEvents, user_id: str) -> None:
    return None


TaskEvents.changed = _no_wake_up  # type: ignore[method-assign]
app = create_app()
