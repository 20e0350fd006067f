"""The fault suite's own tools. The harness's client: a 500 fails the test at once; 503s and
dropped connections are retried with the same Idempotency-Key and counted (the fault tests
bound that count). The samplers: a broken or silent sampler fails instead of reporting zeros."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.faults import harness
from tests.faults.harness import FaultEnv
from tests.faults.samplers import LeaseSampler, ProcSampler
from tests.support.procs import wait_for
from tests.support.redis_server import free_port

REPLICA = SimpleNamespace(url="http://127.0.0.1:9")  # never contacted: http is faked


def _answers(monkeypatch, *answers):
    """Fake ``http``: each call takes the next answer (a status, or an exception to raise)."""
    queue, keys = list(answers), []

    def fake_http(method, url, body=None, headers=None, timeout=10):
        keys.append(headers["Idempotency-Key"])
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer, {"jobId": "python-1"} if answer == 202 else {"detail": "x"}, {}

    monkeypatch.setattr(harness, "http", fake_http)
    monkeypatch.setattr(harness.time, "sleep", lambda s: None)
    return keys


def test_a_500_fails_at_once(tmp_path, monkeypatch):
    env = FaultEnv(tmp_path, tmp_path)
    keys = _answers(monkeypatch, 500, 202)
    with pytest.raises(AssertionError, match="answered 500"):
        env.invoke("python", replica=REPLICA)
    assert len(keys) == 1 and not env.invoke_retries


def test_503_and_dropped_connections_are_retried_and_counted(tmp_path, monkeypatch):
    env = FaultEnv(tmp_path, tmp_path)
    keys = _answers(monkeypatch, 503, ConnectionResetError(), 503, 202)
    assert env.invoke("python", replica=REPLICA) == "python-1"
    assert env.invoke_retries == {503: 2, 0: 1}
    assert len(set(keys)) == 1, "every retry carries the same Idempotency-Key"


def test_a_sampler_that_breaks_fails_the_test():
    class Broken(ProcSampler):
        def sample(self):
            raise ValueError("bad /proc parse")

    with pytest.raises(AssertionError, match="broke: ValueError"):
        with Broken():
            pass


def test_a_sampler_that_never_sampled_fails_the_test():
    with pytest.raises(AssertionError, match="took no sample"):
        with LeaseSampler(f"redis://127.0.0.1:{free_port()}/0", ["python"]) as leases:
            wait_for(lambda: leases.missed, 5, what="a missed sample")  # nobody listens there


def test_the_proc_sampler_samples():
    with ProcSampler() as procs:
        wait_for(lambda: procs.samples >= 2, 5, what="two samples")
    assert procs.sample_ns[0] < procs.sample_ns[-1]
