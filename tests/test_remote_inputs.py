"""Remote inputs: https files through a local HTTP server (ETag revalidation), datastore blobs through
adlfs against Azurite, and the errors a user can act on."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import AZ, AZURITE, PROCESS_WORKSPACE, Result, init_repo, write

Cli = Callable[..., Result]
pytestmark = pytest.mark.slow
ENV = "environment: {image: 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest'}\n"


class Files:
    """What the server serves, and the conditional headers each GET carried."""

    def __init__(self) -> None:
        self.content: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []


@pytest.fixture
def web() -> Iterator[tuple[str, Files]]:
    files = Files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            files.requests.append((self.path, self.headers.get("If-None-Match")))
            body = files.content.get(self.path.split("?", 1)[0])
            if body is None:
                self.send_error(404)
                return
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


def job(root: Path, inputs: str, command: str) -> None:
    write(root / "jobs" / "read" / "job.yml", f"$schema: {AZ}/commandJob.schema.json\ncommand: {command}\n{ENV}"
                                              f"inputs:\n{inputs}")


def last_run(cli: Cli, root: Path) -> dict[str, object]:
    runs = json.loads(cli("job", "list", "--format", "json", cwd=root).out)
    data: dict[str, object] = json.loads(cli("job", "show", runs[0]["id"], "--format", "json", cwd=root).out)
    return data


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    return tmp_path / "repo"


def test_an_https_input_is_downloaded_once_and_revalidated_by_etag(repo: Path, cli: Cli,
                                                                   web: tuple[str, Files]) -> None:
    base, files = web
    files.content["/datasets/iris.csv"] = b"sepal,petal\n5.1,1.4\n"
    write(repo / "mlops.yaml", PROCESS_WORKSPACE)
    job(repo, f"  iris: {{type: uri_file, path: '{base}/datasets/iris.csv?sv=1&sig=SECRETSIG'}}\n",
        "cat ${{inputs.iris}}")
    init_repo(repo, "A job reading a file from the web")
    res = cli("job", "run", "jobs/read/job.yml", cwd=repo)
    assert res.code == 0, res.err
    run = last_run(cli, repo)
    assert "5.1,1.4" in cli("job", "logs", str(run["id"]), cwd=repo).out
    assert files.requests == [("/datasets/iris.csv?sv=1&sig=SECRETSIG", None)]
    assert "SECRETSIG" not in res.out + res.err + json.dumps(run)  # the SAS signature is masked

    res = cli("job", "run", "jobs/read/job.yml", cwd=repo)  # asked again, with the ETag: 304, step reused
    assert res.code == 0, res.err
    assert files.requests[1][1] is not None and files.requests[1][1].startswith('"')
    assert [s["status"] for s in last_run(cli, repo)["steps"]] == ["reused"]  # type: ignore[attr-defined]

    files.content["/datasets/iris.csv"] = b"sepal,petal\n6.3,4.9\n"  # the file changed: fetched and run again
    assert cli("job", "run", "jobs/read/job.yml", cwd=repo).code == 0
    run = last_run(cli, repo)
    assert [s["status"] for s in run["steps"]] == ["completed"]  # type: ignore[attr-defined]
    assert "6.3,4.9" in cli("job", "logs", str(run["id"]), cwd=repo).out


def test_an_unreachable_or_missing_url_is_one_error_naming_the_step(repo: Path, cli: Cli,
                                                                    web: tuple[str, Files]) -> None:
    base, _ = web
    write(repo / "mlops.yaml", PROCESS_WORKSPACE)
    job(repo, f"  iris: {{type: uri_file, path: '{base}/nothing.csv'}}\n", "cat ${{inputs.iris}}")
    init_repo(repo, "A job reading a missing file")
    res = cli("job", "run", "jobs/read/job.yml", cwd=repo)
    assert res.code == 1 and "step 'main': input 'iris'" in res.err and "HTTP 404" in res.err
    assert "Traceback" not in res.err


@pytest.fixture
def container(azurite: str) -> Iterator[str]:
    from azure.storage.blob import BlobServiceClient

    name = f"data-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(azurite)
    client = service.create_container(name)
    client.upload_blob("taxi/rows.csv", b"fare\n12.5\n")
    client.upload_blob("taxi/more/extra.csv", b"fare\n7.0\n")
    yield name
    service.delete_container(name)


def test_datastore_inputs_are_read_through_adlfs(repo: Path, cli: Cli, container: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    key = AZURITE.split("AccountKey=", 1)[1].split(";", 1)[0]
    monkeypatch.setenv("TEST_STORAGE_KEY", key)
    write(repo / "mlops.yaml", PROCESS_WORKSPACE +
                               "datastores:\n  workspaceblobstore:\n"
                               "    account_url: http://127.0.0.1:10000/devstoreaccount1\n"
                               f"    container: {container}\n    credential: ${{TEST_STORAGE_KEY}}\n")
    job(repo, "  rows: {type: uri_file, path: 'azureml://datastores/workspaceblobstore/paths/taxi/rows.csv'}\n"
              "  all: {type: uri_folder, path: 'azureml://datastores/workspaceblobstore/paths/taxi/'}\n"
              f"  same: {{type: uri_file, path: 'wasbs://{container}@devstoreaccount1.blob.core.windows.net/"
              "taxi/more/extra.csv'}\n",
        "cat ${{inputs.rows}} ${{inputs.same}} && cd ${{inputs.all}} && find . -type f | sort")
    init_repo(repo, "A job reading blobs of a datastore")
    res = cli("job", "run", "jobs/read/job.yml", cwd=repo)
    assert res.code == 0, res.err
    log = cli("job", "logs", str(last_run(cli, repo)["id"]), cwd=repo).out
    assert "12.5" in log and "7.0" in log and "./more/extra.csv" in log and "./rows.csv" in log
    assert key not in res.out + res.err + log

    # a wrong key: one error naming the datastore and what to check
    monkeypatch.setenv("TEST_STORAGE_KEY", key[:-8] + "AAAAAAA=")
    res = cli("job", "run", "jobs/read/job.yml", "--force-rerun", cwd=repo)
    assert res.code == 1 and "datastore 'workspaceblobstore'" in res.err and "credential" in res.err
    assert "mlops.yaml:" in res.err and "Traceback" not in res.err


def test_a_datastore_missing_from_mlops_yaml_names_the_setting_to_add(repo: Path, cli: Cli) -> None:
    write(repo / "mlops.yaml", PROCESS_WORKSPACE)
    job(repo, "  rows: {type: uri_file, path: 'azureml://datastores/workspaceblobstore/paths/taxi/rows.csv'}\n",
        "cat ${{inputs.rows}}")
    init_repo(repo, "A job reading an unconfigured datastore")
    res = cli("job", "run", "jobs/read/job.yml", cwd=repo)
    assert res.code == 1
    assert "datastore 'workspaceblobstore' is not configured" in res.err and "datastores:" in res.err


def test_a_data_asset_that_names_a_url_is_fetched_when_a_job_reads_it(repo: Path, cli: Cli,
                                                                       web: tuple[str, Files]) -> None:
    base, files = web
    files.content["/iris.csv"] = b"sepal\n4.4\n"
    write(repo / "mlops.yaml", PROCESS_WORKSPACE)
    write(repo / "data" / "iris.yml", f"$schema: {AZ}/data.schema.json\nname: iris\ntype: uri_file\n"
                                      f"path: {base}/iris.csv\n")
    job(repo, "  iris: {type: uri_file, path: 'azureml:iris@latest'}\n", "cat ${{inputs.iris}}")
    init_repo(repo, "A data asset on the web")
    res = cli("apply", "--auto-approve", cwd=repo)
    assert res.code == 0, res.err
    run = last_run(cli, repo)
    assert "4.4" in cli("job", "logs", str(run["id"]), cwd=repo).out
    assert [r[0] for r in files.requests] == ["/iris.csv"]


def test_a_datastore_without_credentials_says_which_setting_it_needs(repo: Path, cli: Cli) -> None:
    write(repo / "mlops.yaml", PROCESS_WORKSPACE +
                               "datastores:\n  blobs: {account_url: 'http://127.0.0.1:10000/devstoreaccount1', "
                               "container: data}\n")
    job(repo, "  rows: {type: uri_file, path: 'azureml://datastores/blobs/paths/taxi/rows.csv'}\n",
        "cat ${{inputs.rows}}")
    init_repo(repo, "A datastore without a credential")
    res = cli("job", "run", "jobs/read/job.yml", cwd=repo)
    assert res.code == 1 and "mlops.yaml:5:3: datastore 'blobs'" in res.err
    assert "set `credential`" in res.err and "connection_string" in res.err and "Traceback" not in res.err
