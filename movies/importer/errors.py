EXCERPT_CHARACTERS = 60
# Bounds of what the database can store: ids are 32-bit integer columns on PostgreSQL (SQLite would take more and
# the same data would then fail there); timestamps must be a real date (Unix seconds up to the year 2100).
MAX_ID = 2**31 - 1
MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01
MESSAGE_CHARACTERS = 300


def excerpt(value: object, limit: int = EXCERPT_CHARACTERS, *, quoted: bool = True) -> str:
    """A bad value as an error message shows it: its repr (or plain text), cut to `limit` characters, with the
    length of the whole (a 50 MB line is never echoed whole)."""
    text = repr(value) if quoted else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(str(value)):,} characters)"


class DatasetError(Exception):
    """A problem with the input files, reported with the file and line it was found at (the reason cut short, so a
    huge bad value is never echoed whole)."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        if len(message) > MESSAGE_CHARACTERS:
            message = message[:MESSAGE_CHARACTERS] + "..."
        self.file, self.line, self.reason = file, line, message
        where = file or ""
        if file and line:
            where = f"{file}, line {line}"
        super().__init__(f"{where}: {message}" if where else message)
