class DatasetError(Exception):
    """A problem with the input files, reported with the file and line it was found at."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file, self.line, self.reason = file, line, message
        where = file or ""
        if file and line:
            where = f"{file}, line {line}"
        super().__init__(f"{where}: {message}" if where else message)
