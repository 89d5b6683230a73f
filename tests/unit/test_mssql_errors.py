"""SQL Server's errors as the service sees them: pyodbc exceptions worded the way pyodbc words
Microsoft ODBC Driver 18's diagnostic records ("[SQLSTATE] message (native error) (function)",
further records after "; "), with SQL Server's own message texts (sys.messages, as Microsoft
documents them; "%d" arguments filled in). The SQLSTATE is the generic 42000 the driver gives
most server errors, or the one it gives a deadlock or a dropped link: the classification has to
go by the native error number, as Microsoft.Data.SqlClient's retry logic does."""

from __future__ import annotations

import pyodbc
import pytest
from sqlalchemy import exc as sa_exc

from common.errors import ConcurrentUpdate, DatabaseUnavailable, PermanentError
from common.sql.db import MSSQL_TRANSIENT_CODES, mssql_error_numbers, translate_db_error

DRIVER = "[Microsoft][ODBC Driver 18 for SQL Server]"

# Microsoft.Data.SqlClient's transient list (SqlConfigurableRetryFactory), with the texts.
TRANSIENT = {
    1204: "The instance of the SQL Server Database Engine cannot obtain a LOCK resource at this "
    "time. Rerun your statement when there are fewer active users. Ask the database "
    "administrator to check the lock and memory configuration for this instance, or to check "
    "for long-running transactions.",
    1205: "Transaction (Process ID 64) was deadlocked on lock resources with another process and "
    "has been chosen as the deadlock victim. Rerun the transaction.",
    1222: "Lock request time out period exceeded.",
    4060: 'Cannot open database "ingest" requested by the login. The login failed.',
    4221: "Login to read-secondary failed due to long wait on "
    "'HADR_DATABASE_WAIT_FOR_TRANSITION_TO_VERSIONING'. The replica is not available for login "
    "because row versions are missing for transactions that were in-flight when the replica "
    "was recycled.",
    40143: "The service has encountered an error processing your request. Please try again.",
    40197: "The service has encountered an error processing your request. Please try again. "
    "Error code 4815.",
    40501: "The service is currently busy. Retry the request after 10 seconds. Incident ID: "
    "ABC123. Code: 4.",
    40540: "The service has encountered an error processing your request. Please try again.",
    40613: "Database 'ingest' on server 'ingest-sql' is not currently available. Please retry "
    "the connection later. If the problem persists, contact customer support, and provide them "
    "the session tracing ID of '8E1F4D2A-0000-0000-0000-000000000000'.",
    49918: "Cannot process request. Not enough resources to process request.",
    49919: "Cannot process create or update request. Too many create or update operations in "
    'progress for subscription "1".',
    49920: 'Cannot process request. Too many operations in progress for subscription "1".',
    10928: "Resource ID: 1. The request limit for the database is 200 and has been reached.",
    10929: "Resource ID: 1. The request minimum guarantee is 20, maximum limit is 200 and the "
    "current usage for the database is 200. However, the server is currently too busy to "
    "support requests greater than 20 for this database.",
}
# Client-side provider errors, worded by the driver itself.
LINK = {
    233: "Shared Memory Provider: No process is on the other end of the pipe.",
    997: "Named Pipes Provider: Overlapped I/O operation is in progress.",
    10053: "TCP Provider: An established connection was aborted by the software in your host "
    "machine.",
    10054: "TCP Provider: An existing connection was forcibly closed by the remote host.",
    10060: "TCP Provider: A connection attempt failed because the connected party did not "
    "properly respond after a period of time.",
}
PERMANENT = {
    8003: "The incoming request has too many parameters. The server supports a maximum of 2100 "
    "parameters. Reduce the number of parameters and resend the request.",
    3952: "Snapshot isolation transaction failed accessing database 'ingest' because snapshot "
    "isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot "
    "isolation.",
    8152: "String or binary data would be truncated.",
    547: 'The INSERT statement conflicted with the FOREIGN KEY constraint "fk". The conflict '
    'occurred in database "ingest", table "dbo.jobs", column \'id\'.',
}


def _server_error(
    cls: type[pyodbc.Error], sqlstate: str, number: int, text: str
) -> sa_exc.DBAPIError:
    message = f"[{sqlstate}] {DRIVER}[SQL Server]{text} ({number}) (SQLExecDirectW)"
    return sa_exc.DBAPIError.instance("SELECT 1", (), cls(sqlstate, message), pyodbc.Error)


def test_the_transient_numbers_are_microsoft_data_sqlclients() -> None:
    assert set(TRANSIENT) | set(LINK) == MSSQL_TRANSIENT_CODES


@pytest.mark.parametrize(("number", "text"), sorted(TRANSIENT.items()))
def test_sql_servers_transient_errors_are_retried(number: int, text: str) -> None:
    sqlstate = "40001" if number == 1205 else "42000"
    error = _server_error(pyodbc.ProgrammingError, sqlstate, number, text)

    assert isinstance(translate_db_error(error), DatabaseUnavailable)


@pytest.mark.parametrize(("number", "text"), sorted(LINK.items()))
def test_dropped_links_are_retried(number: int, text: str) -> None:
    message = f"[08S01] {DRIVER}{text}\n ({number}) (SQLExecDirectW)"
    orig = pyodbc.Error("08S01", message)
    error = sa_exc.DBAPIError.instance("SELECT 1", (), orig, pyodbc.Error)

    assert mssql_error_numbers(message) == [number]
    assert isinstance(translate_db_error(error), DatabaseUnavailable)


@pytest.mark.parametrize(("number", "text"), sorted(PERMANENT.items()))
def test_errors_a_retry_cannot_fix_are_permanent(number: int, text: str) -> None:
    error = _server_error(pyodbc.ProgrammingError, "42000", number, text)

    assert type(translate_db_error(error)) is PermanentError


def test_a_duplicate_key_from_another_writer_is_a_concurrent_update() -> None:
    text = (
        "Violation of PRIMARY KEY constraint 'PK__jobs'. Cannot insert duplicate key in object "
        "'dbo.jobs'. The duplicate key value is (7)."
    )
    error = _server_error(pyodbc.IntegrityError, "23000", 2627, text)

    assert isinstance(translate_db_error(error), ConcurrentUpdate)


def test_every_record_of_a_message_counts_and_numbers_in_the_text_do_not() -> None:
    deadlock = f"{DRIVER}[SQL Server]{TRANSIENT[1205]}"
    message = (
        f"[42000] {DRIVER}[SQL Server]The statement has been terminated. (3621) "
        f"(SQLExecDirectW); [40001] {deadlock} (1205)"
    )
    assert mssql_error_numbers(message) == [3621, 1205]
    error = sa_exc.DBAPIError.instance(
        "SELECT 1", (), pyodbc.ProgrammingError("42000", message), pyodbc.Error
    )
    assert isinstance(translate_db_error(error), DatabaseUnavailable)
    # "Process ID 64" or "(7)" inside a message text are not error numbers.
    assert mssql_error_numbers(f"[42000] {DRIVER}{TRANSIENT[1205]} (8152) (SQLExecDirectW)") == [
        8152
    ]
