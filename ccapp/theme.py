"""ccapp's colours; screens use theme variables ($primary, $error, …), never literals."""

from textual.theme import Theme

CCAPP_THEME = Theme(
    name="ccapp",
    primary="#4FB3BF",  # teal: the course being corrected
    secondary="#7E8CE0",
    accent="#F2B94B",  # amber: correction spans
    warning="#F2B94B",
    error="#E5534B",
    success="#57AB5A",
    foreground="#D8DEE9",
    background="#14181E",
    surface="#1B2028",
    panel="#232A35",
    dark=True,
)
