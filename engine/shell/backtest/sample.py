"""The name that stands for the bundled sample history in --prices and --actions (a module of
its own: the command's package and its runner both read it, and neither imports the other
back)."""

SAMPLE = "sample:stocks"
