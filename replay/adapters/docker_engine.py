"""The local Docker engine: the only module that imports ``docker``.

Every docker-py failure is turned into a ReplayError here, so a user never sees "Error while fetching server
API version". The client is made on first use, never at import time.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from replay.adapters.engine_kinds import EngineKind, adjust_host_config, engine_kind, is_link, loaded_ids
from replay.core.ports import GpuProbe, ImageRecord, RunResult, RunSpec, Tmpfs
from replay.errors import BadInput, EngineUnavailable, EnvironmentProblem, ImageProblem, Interrupted
from replay.manifest import GpuInfo

OWNER_LABEL = "io.replay.owner"  # put on every container replay starts, so leftovers can be found
# Every ordinary engine call (ping, inspect, create, start, kill, remove) answers within this many seconds,
# or the engine is reported as not answering (exit 3): an engine that accepts a connection and then says
# nothing must not hang replay. Streams (a build, the log of a long run) have no read timeout of their own.
API_TIMEOUT_S = 60.0
TIMEOUT_ENV = "REPLAY_ENGINE_TIMEOUT"
# How long past a run's own --timeout we wait for the engine to report the container's end.
WAIT_GRACE_S = 60.0
MAX_LINE_BYTES = 64 << 10  # a longer log line is cut (and says so)
LOG_READ_BYTES = 64 << 20  # what verify reads of a replay's log at most; past it, the engine's tail
LOG_KEEP_BYTES = 8 << 20  # what the engine keeps of a replay's log (its tail)
# Go's os.ModeType bits in the engine's stat of a path: dir, symlink, device, pipe, socket, char device, irregular.
_GO_MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)


class BuildFailed(EnvironmentProblem):
    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"the image build failed: {message}", "see the build log above (rerun with --verbose)")
        self.log_tail = log_tail


class DockerEngine:
    """The ``Engine`` port backed by the Docker engine that DOCKER_HOST (or the default socket) names."""

    def __init__(self, timeout: float | None = None, base_url: Callable[[], str] | None = None,
                 gpus: GpuProbe | None = None) -> None:
        """``base_url`` says, when first asked, where the engine's API is (a Podman socket); None: DOCKER_HOST
        or Docker's default socket. ``gpus`` lists the host's GPUs for the host facts (None: none)."""
        self._timeout = timeout if timeout is not None else _api_timeout()
        self._client: Any = None
        self._base_url = base_url
        self._kind: EngineKind | None = None
        self._gpus = gpus

    # --- connection --------------------------------------------------------------------------------

    @property
    def api(self) -> Any:
        if self._client is None:
            import docker
            from docker.errors import DockerException

            try:
                if self._base_url is None:
                    client = docker.from_env(timeout=self._timeout)
                else:
                    client = docker.DockerClient(base_url=self._base_url(), timeout=self._timeout)
                client.ping()
            except DockerException as exc:
                raise EngineUnavailable(_short(exc, self._timeout)) from None
            except Exception as exc:  # requests/urllib3 errors leak through from_env on a dead socket
                raise EngineUnavailable(_short(exc, self._timeout)) from None
            self._client = client
        return self._client.api

    def version(self) -> str:
        with self._errors():
            return str(self.api.version().get("Version", ""))

    def name(self) -> str:
        """Which engine answers: "docker", "podman" or "podman (rootless)"."""
        return self.kind.name

    @property
    def kind(self) -> EngineKind:
        if self._kind is None:
            with self._errors():
                self._kind = engine_kind(self.api)
        return self._kind

    def host_gpus(self) -> list[GpuInfo]:
        return self._gpus.gpus() if self._gpus is not None else []

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        from docker.errors import DockerException

        try:
            yield
        except DockerException as exc:
            if "could not select device driver" in str(exc):  # a GPU device request, and no GPU runtime
                raise EnvironmentProblem(
                    f"the Docker engine cannot give the container GPUs ({_short(exc)})",
                    "install the NVIDIA container toolkit on this machine (`docker info` then lists an nvidia "
                    "runtime), or verify without --gpus",
                ) from None
            raise EnvironmentProblem(f"the Docker engine refused: {_short(exc)}", "see `docker info`") from None
        except OSError as exc:  # requests' timeouts and connection errors are OSErrors, as ConnectionError is
            raise EngineUnavailable(_short(exc, self._timeout)) from None

    # --- images ------------------------------------------------------------------------------------

    def image(self, ref: str) -> ImageRecord | None:
        from docker.errors import ImageNotFound, NotFound

        with self._errors():
            try:
                raw = self.api.inspect_image(ref)
            except (ImageNotFound, NotFound):
                return None
        config = raw.get("Config") or {}
        return ImageRecord(
            id=raw["Id"],
            tags=list(raw.get("RepoTags") or []),
            repo_digests=list(raw.get("RepoDigests") or []),
            size=int(raw.get("Size") or 0),
            labels=dict(config.get("Labels") or {}),
            volumes=sorted(str(v) for v in (config.get("Volumes") or {})),
        )

    def pull(self, ref: str, on_bytes: Callable[[int, int | None], None] | None = None) -> ImageRecord:
        """Pull ``REPO:TAG`` or ``REPO@sha256:DIGEST``; errors inside the stream are errors too. ``on_bytes``
        hears the bytes downloaded so far, summed over layers, and their total once every layer's is known."""
        from docker.errors import DockerException

        from replay.adapters.engine_progress import follow_pull

        repo, tag = _split_ref(ref)
        try:
            # Read raw and cut to bounded lines here: docker-py's own decoding holds a line of any length.
            raw = self.api.pull(repo, tag=tag, stream=True, decode=False)
            for chunk in follow_pull(_lines(_as_bytes(raw)), on_bytes):
                if chunk.get("error"):
                    raise ImageProblem(f"cannot pull {ref} ({str(chunk['error']).strip()[:300]})",
                                       "check the reference and that the registry answers (docker login if needed)")
        except DockerException as exc:
            raise ImageProblem(f"cannot pull {ref} ({_short(exc)})",
                               "check the reference and that the registry answers (docker login if needed)") from None
        record = self.image(ref)
        if record is None:  # pragma: no cover - the engine said it pulled
            raise ImageProblem(f"pulled {ref} but the engine does not list it", "")
        return record

    def push(self, ref: str, on_bytes: Callable[[int, int], None] | None = None) -> str:
        """Push ``ref``; the registry digest from the engine's final status. Credentials: the Docker config."""
        from docker.errors import DockerException

        repo, tag = _split_ref(ref)
        digest = ""
        progress: dict[str, tuple[int, int]] = {}
        try:
            for chunk in self.api.push(repo, tag=tag, stream=True, decode=True):
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    raise ImageProblem(f"cannot push {ref} ({str(chunk['error']).strip()[:300]})",
                                       "check the registry answers and your credentials (docker login)")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
                detail = chunk.get("progressDetail") or {}
                if on_bytes and chunk.get("id") and detail.get("total"):
                    progress[str(chunk["id"])] = (int(detail.get("current", 0)), int(detail["total"]))
                    on_bytes(sum(c for c, _ in progress.values()), sum(t for _, t in progress.values()))
        except DockerException as exc:
            raise ImageProblem(f"cannot push {ref} ({_short(exc)})",
                               "check the registry answers and your credentials (docker login)") from None
        if not digest.startswith("sha256:"):
            raise ImageProblem(f"the engine pushed {ref} but reported no digest", "see `docker push`")
        return digest

    def load(self, archive: Iterable[bytes], on_bytes: Callable[[int], None] | None = None) -> list[str]:
        """Stream a docker-archive into the engine (chunked upload); the IDs it reports loading. ``on_bytes``
        hears how many bytes the engine has been fed so far."""
        from docker.errors import DockerException

        from replay.adapters.engine_progress import counted

        loaded: list[str] = []
        try:
            for chunk in self.api.load_image(counted(archive, on_bytes)):
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    raise ImageProblem(f"the engine refused the image ({str(chunk['error']).strip()[:300]})",
                                       "the bundle's image is damaged: ask for the bundle again")
                loaded += loaded_ids(str(chunk.get("stream") or ""))
        except DockerException as exc:
            raise ImageProblem(f"the engine refused the image ({_short(exc)})",
                               "the bundle's image is damaged: ask for the bundle again") from None
        return loaded

    def read_file(self, image: str, path: str, max_bytes: int) -> bytes | None:
        """A created (never started) container's ``get_archive`` of one path, parsed strictly."""
        import io
        import tarfile

        from docker.errors import DockerException

        with self._errors():
            container = self.api.create_container(image, command=["/nonexistent"], network_disabled=True,
                                                  labels={OWNER_LABEL: "read"}, use_config_proxy=False, entrypoint=[])
        try:
            response = self._archive(container, path)
            if response is None:
                return None
            with contextlib.closing(response):  # closed even when refused unread: removal must not wait on it
                raw = self._archive_file(response, image, path, max_bytes)
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
                members = tar.getmembers()
                if len(members) != 1 or not members[0].isreg() or members[0].size > max_bytes:
                    raise ImageProblem(f"{path} in image {image[:19]} is not one regular file", "")
                handle = tar.extractfile(members[0])
                assert handle is not None
                return handle.read()
        except (tarfile.TarError, DockerException) as exc:
            raise ImageProblem(f"cannot read {path} from image {image[:19]} ({_short(exc)})", "") from None
        finally:
            with contextlib.suppress(DockerException):
                self.api.remove_container(container, force=True, v=True)  # and its anonymous volumes

    def _archive(self, container: Any, path: str) -> Any:
        """The engine's streamed tar of ``path`` (an open response the caller closes), None when there is none."""
        from docker.errors import NotFound

        cid = container["Id"] if isinstance(container, dict) else str(container)
        response = self.api._get(self.api._url("/containers/{0}/archive", cid), params={"path": path}, stream=True)
        try:
            self.api._raise_for_status(response)
        except NotFound:
            response.close()
            return None
        except BaseException:
            response.close()
            raise
        return response

    def _archive_file(self, response: Any, image: str, path: str, max_bytes: int) -> bytes:
        """The tar of one file, read to at most ``max_bytes`` (plus its tar headers); refused past that."""
        from docker.utils import decode_json_header

        stat = decode_json_header(response.headers.get("x-docker-container-path-stat") or "e30=")
        odd = int(stat.get("mode", 0)) & _GO_MODE_TYPE or is_link(self.kind, stat, path)
        if int(stat.get("size", 0)) > max_bytes or odd:
            raise BadInput(f"{path} in image {image[:19]} is not a regular file of at most {max_bytes} bytes",
                           "do not trust this image: `replay capture` did not make it")
        raw = bytearray()
        for chunk in response.iter_content(1 << 20, False):
            raw += chunk
            if len(raw) > max_bytes + 64 * 1024:
                raise BadInput(f"{path} in image {image[:19]} is larger than {max_bytes} bytes",
                               "do not trust this image: `replay capture` did not make it")
        return bytes(raw)

    def free_bytes(self) -> int | None:
        """Free space where the engine keeps its images, when this machine can see that folder; else None."""
        with self._errors():
            root = str(self.api.info().get("DockerRootDir") or "")
        try:
            st = os.statvfs(root) if root else None
        except OSError:
            return None
        return st.f_bavail * st.f_frsize if st else None

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        with self._errors():
            self.api.tag(image_id, repository, tag=tag, force=True)

    def remove_image(self, ref: str) -> None:
        from docker.errors import ImageNotFound, NotFound

        with self._errors(), contextlib.suppress(ImageNotFound, NotFound):
            self.api.remove_image(ref, force=True, noprune=False)

    def labelled_images(self, key: str) -> list[ImageRecord]:
        with self._errors():
            raw = self.api.images(all=True, filters={"label": key})
        return [ImageRecord(id=r["Id"], tags=[t for t in r.get("RepoTags") or [] if t != "<none>:<none>"],
                            repo_digests=[d for d in r.get("RepoDigests") or [] if d != "<none>@<none>"],
                            size=int(r.get("Size") or 0), labels=dict(r.get("Labels") or {}),
                            parent=str(r.get("ParentId") or "")) for r in raw]

    def remove_unused_image(self, image_id: str) -> str | None:
        """Checked first (containers, child images), then its extra tags, then the image by ID, never forced:
        the engine's own refusal (a race with a new container) is reported, not overridden."""
        from docker.errors import APIError, ImageNotFound, NotFound

        with self._errors():
            try:
                raw = self.api.inspect_image(image_id)
            except (ImageNotFound, NotFound):
                return None
            if self.api.containers(all=True, filters={"ancestor": image_id}):
                return "a container uses it"
            if any(i.get("ParentId") == image_id for i in self.api.images(all=True)):
                return "another image is built on it"
            try:
                for tag in (raw.get("RepoTags") or [])[1:]:  # by ID, an image with several tags needs force
                    self.api.remove_image(tag, force=False, noprune=False)
                self.api.remove_image(image_id, force=False, noprune=False)
            except (ImageNotFound, NotFound):
                return None
            except APIError as exc:
                return f"the engine kept it ({_short(exc)})"
        return None

    def build(
        self,
        context: IO[bytes],
        tag: str | None,
        on_line: Callable[[str], None],
        on_step: Callable[[int, int, str], None] | None = None,
        no_cache: bool = False,
    ) -> str:
        """Build from a tar build context with the classic builder, offline; return the image ID. ``on_step``
        hears each step as it starts: its number, the count, and its instruction (neutralized, cut)."""
        from replay.adapters.engine_progress import build_step

        image_id = ""
        tail: deque[str] = deque(maxlen=40)
        with self._errors():
            stream = self.api.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                pull=False,
                nocache=no_cache,
                network_mode="none",  # the build must need no network: packages come from the wheelhouse
                use_config_proxy=False,
            )
            for chunk in stream:
                if "error" in chunk:
                    raise BuildFailed(str(chunk["error"]).strip(), "\n".join(tail))
                text = chunk.get("stream")
                if text:
                    for line in text.rstrip("\n").splitlines():
                        tail.append(line)
                        on_line(line)
                        step = build_step(line) if on_step else None
                        if step is not None and on_step:
                            on_step(step.number, step.total, step.instruction)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
        if not image_id and tag:
            record = self.image(tag)
            image_id = record.id if record else ""
        if not image_id:
            raise BuildFailed("the engine returned no image", "\n".join(tail))
        return image_id

    def import_rootfs(self, tarball: Path, repository: str, tag: str, changes: list[str]) -> str:
        with self._errors():
            self.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
        record = self.image(f"{repository}:{tag}")
        if record is None:
            raise EnvironmentProblem(f"docker import of {repository}:{tag} produced no image", "see `docker images`")
        return record.id

    def save(self, ref: str) -> Iterable[bytes]:
        with self._errors():
            return self.api.get_image(ref)

    # --- containers --------------------------------------------------------------------------------

    def probe(self, image: str, argv: list[str]) -> str:
        """Run a short command in ``image`` (no network) and return its stdout."""
        from docker.errors import DockerException

        try:
            with self._errors_as_os():
                container = self.api.create_container(
                    image, command=argv, host_config=self.api.create_host_config(network_mode="none"),
                    use_config_proxy=False, labels={OWNER_LABEL: "probe"},
                )
        except DockerException as exc:
            raise ImageProblem(f"cannot start {image}: {_short(exc)}", "") from None
        try:
            with self._errors_as_os():
                return self._probe_output(container, image, argv)
        finally:
            with contextlib.suppress(DockerException, OSError):
                self.api.remove_container(container, force=True, v=True)  # and its anonymous volumes

    @contextlib.contextmanager
    def _errors_as_os(self) -> Iterator[None]:
        """Only a silent or vanished engine becomes EngineUnavailable here; docker's own errors pass."""
        try:
            yield
        except OSError as exc:
            raise EngineUnavailable(_short(exc, self._timeout)) from None

    def _probe_output(self, container: Any, image: str, argv: list[str]) -> str:
        self.api.start(container)
        status = self.api.wait(container, timeout=120)
        out = self.api.logs(container, stdout=True, stderr=False).decode("utf-8", "replace")
        if status.get("StatusCode") != 0:
            err = self.api.logs(container, stdout=False, stderr=True).decode("utf-8", "replace")
            raise ImageProblem(f"`{' '.join(argv)}` failed in {image}: {err.strip()[-300:]}", "")
        return out

    def run(self, spec: RunSpec, on_line: Callable[[str], None], cancel: threading.Event | None = None) -> RunResult:
        """Run ``spec`` to completion. Ctrl-C, a timeout, ``cancel`` or any error kills and removes the container.

        In a batch the run is in a worker thread, where no KeyboardInterrupt arrives: the batch sets ``cancel``
        and a watcher thread kills the container, whose log stream then ends, and ``Interrupted`` is raised.
        """
        from replay.adapters import scratch_tree

        with self._errors(), scratch_tree.prepared(self.api, spec) as scratch:
            result = self._run(scratch.spec if scratch else spec, on_line, cancel, scratch)
        if scratch is not None:
            result.written, result.written_count = scratch.written, scratch.count
        return result

    def _run(self, spec: RunSpec, on_line: Callable[[str], None], cancel: threading.Event | None,
             scratch: Any) -> RunResult:
        from docker.errors import DockerException
        from docker.types import LogConfig, Mount

        mounts = [Mount(m.target, m.source, type="bind", read_only=m.read_only) for m in spec.mounts]
        with self._errors():
            host_config = self.api.create_host_config(
                mounts=mounts,
                network_mode="none" if not spec.network else "bridge",
                read_only=spec.read_only_root,
                tmpfs={t.target: _tmpfs_options(t) for t in spec.tmpfs},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                init=True,  # PID 1 forwards signals, so Ctrl-C and timeouts stop the command at once
                nano_cpus=int(spec.limits.cpus * 1e9) if spec.limits.cpus else None,
                cpuset_cpus=spec.cpuset,
                mem_limit=spec.limits.memory_bytes,
                memswap_limit=spec.limits.memory_bytes,  # no swap beyond the limit: an OOM kill is reported, not hidden
                device_requests=device_requests(spec),
                pids_limit=spec.limits.pids,
                # The engine keeps at most LOG_KEEP_BYTES of the replay's log (its tail), whatever it prints.
                log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": str(LOG_KEEP_BYTES), "max-file": "1"}),
            )
            unenforced = adjust_host_config(self.kind, spec, host_config)
            t0 = time.monotonic()
            container = self.api.create_container(
                spec.image, command=spec.argv, working_dir=spec.workdir, environment=spec.env,
                user=spec.user, host_config=host_config, labels={OWNER_LABEL: "verify", **spec.labels},
                network_disabled=not spec.network, use_config_proxy=False, entrypoint=[],
                hostname=spec.hostname,
            )
        tail: deque[str] = deque(maxlen=60)
        finished = threading.Event()
        try:
            if cancel is not None:
                threading.Thread(target=self._kill_on_cancel, args=(container, cancel, finished), daemon=True,
                                 name="replay-cancel-watch").start()
            with self._errors():
                return replace(self._follow(container, spec, on_line, tail, t0, cancel, scratch.take if scratch else None),
                               unenforced=unenforced)
        finally:
            # Runs on KeyboardInterrupt, cancel and errors.Stopped (SIGTERM/SIGHUP) too: nothing is left behind.
            finished.set()
            with contextlib.suppress(DockerException, OSError):
                self.api.remove_container(container, force=True, v=True)  # and its anonymous volumes

    def _follow(self, container: Any, spec: RunSpec, on_line: Callable[[str], None], tail: deque[str],
                t0: float, cancel: threading.Event | None,
                keep: Callable[[str], str | None] | None = None) -> RunResult:
        """Start the container, stream its log to its end, and read how it ended."""
        from replay.adapters.output_quota import QuotaWatch

        writable = [m.source for m in spec.mounts if not m.read_only]
        quota = spec.limits.max_output_bytes
        with QuotaWatch(writable if quota else [], quota or 0, lambda: self._kill(container)) as watch:
            result = self._follow_watched(container, spec, on_line, tail, t0, cancel, keep)
            watch.check()  # a command that wrote its bulk and ended between two checks
        return replace(result, output_exceeded=quota if watch.exceeded.is_set() else None)

    def _kill(self, container: Any) -> None:
        from docker.errors import DockerException

        with contextlib.suppress(DockerException, OSError):
            self.api.kill(container)

    def _follow_watched(self, container: Any, spec: RunSpec, on_line: Callable[[str], None], tail: deque[str],
                        t0: float, cancel: threading.Event | None,
                        keep: Callable[[str], str | None] | None = None) -> RunResult:
        self.api.start(container)
        started = time.monotonic()
        timed_out = threading.Event()
        timer = None
        if spec.limits.timeout_s:
            timer = threading.Timer(spec.limits.timeout_s, self._kill_on_timeout, (container, timed_out))
            timer.daemon = True
            timer.start()
        try:
            # The log stream has no read timeout (a run may print nothing for hours); the wait that
            # follows gets the run's own timeout plus a grace, or none.
            whole = self._drain(self.api.logs(container, stream=True, follow=True), tail, on_line, keep)
            timeout = spec.limits.timeout_s
            status = self.api.wait(container, timeout=timeout + WAIT_GRACE_S if timeout else None)
            if not whole:  # more than LOG_READ_BYTES: the tail comes from the engine's capped log
                tail.clear()
                ended = _lines([self.api.logs(container, stdout=True, stderr=True, tail=tail.maxlen or 60)])
                tail.extend(line for raw in ended if (line := keep(raw) if keep else raw) is not None)
        finally:
            if timer:
                timer.cancel()
        if cancel is not None and cancel.is_set():
            raise Interrupted()
        state = self.api.inspect_container(container)["State"]
        return RunResult(
            exit_code=int(status.get("StatusCode", -1)),
            duration_s=time.monotonic() - started,
            start_s=started - t0,
            timed_out=timed_out.is_set(),
            oom_killed=bool(state.get("OOMKilled")),
            log_tail="\n".join(tail),
        )

    @staticmethod
    def _drain(stream: Any, tail: deque[str], on_line: Callable[[str], None],
               keep: Callable[[str], str | None] | None = None) -> bool:
        """Read the log to its end, at most LOG_READ_BYTES of it; False when it had more (then it is closed).
        ``keep`` takes lines (or parts of them) out first: the scratch tree's listing is not the command's."""
        seen = 0

        def counted() -> Iterator[bytes]:
            nonlocal seen
            for chunk in stream:
                seen += len(chunk)
                yield chunk
                if seen > LOG_READ_BYTES:
                    return

        for raw in _lines(counted()):
            line = keep(raw) if keep else raw
            if line is None:
                continue
            tail.append(line)
            on_line(line)
        if seen > LOG_READ_BYTES:
            with contextlib.suppress(Exception):
                stream.close()
            return False
        return True

    def _kill_on_cancel(self, container: Any, cancel: threading.Event, finished: threading.Event) -> None:
        from docker.errors import DockerException

        while not finished.is_set():
            if cancel.wait(0.1):
                # Again until the run ends: a kill before the container has started does not stop its start.
                with contextlib.suppress(DockerException):
                    self.api.kill(container)
                finished.wait(0.5)

    def _kill_on_timeout(self, container: Any, flag: threading.Event) -> None:
        """Kill a command still running at its timeout; one that has ended by then did not time out (however
        long its log takes to read)."""
        from docker.errors import DockerException

        with contextlib.suppress(DockerException, OSError):
            if self.api.inspect_container(container)["State"].get("Running"):
                flag.set()
                self.api.kill(container)

    def leftover_containers(self) -> list[str]:
        with self._errors():
            found = self.api.containers(all=True, filters={"label": OWNER_LABEL})
        return [c["Id"] for c in found]


def _split_ref(ref: str) -> tuple[str, str]:
    """``REPO@sha256:D`` -> (REPO, sha256:D); ``REPO:TAG`` -> (REPO, TAG); ``REPO`` -> (REPO, latest)."""
    if "@" in ref:
        repo, _, digest = ref.partition("@")
        return repo, digest
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = ref.rpartition(":")
        return repo, tag
    return ref, "latest"


def device_requests(spec: RunSpec) -> list[Any] | None:
    """``RunLimits.gpus`` as the engine's device request (``docker run --gpus N``); None when no GPU is asked."""
    if not spec.limits.gpus:
        return None
    from docker.types import DeviceRequest

    return [DeviceRequest(count=spec.limits.gpus, capabilities=[["gpu"]])]


def _tmpfs_options(t: Tmpfs) -> str:
    owner = f",uid={t.owner[0]},gid={t.owner[1]},mode=0755" if t.owner else ""
    return f"rw,{'exec' if t.exec else 'noexec'},nosuid,nodev,size={t.size_bytes}{owner}"


def _lines(chunks: Iterable[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[str]:
    """The lines of a byte stream, in one pass over each byte: a line longer than ``limit`` keeps its first
    ``limit`` bytes and says how many more it had (a 60 MB line without a newline costs ``limit`` bytes)."""
    head = bytearray()
    extra = 0
    for chunk in chunks:
        start = 0
        while start < len(chunk):
            newline = chunk.find(b"\n", start)
            end = len(chunk) if newline < 0 else newline
            room = max(0, limit - len(head))
            head += chunk[start:start + min(room, end - start)]
            extra += max(0, end - start - room)
            if newline < 0:
                break
            yield _line_text(head, extra)
            head, extra = bytearray(), 0
            start = newline + 1
    if head or extra:
        yield _line_text(head, extra)


def _as_bytes(chunks: Iterable[bytes | str]) -> Iterator[bytes]:
    """docker-py's raw stream: bytes, or the whole body as one str when the engine answered unchunked."""
    for chunk in chunks:
        yield chunk.encode("utf-8", "replace") if isinstance(chunk, str) else chunk


def _line_text(head: bytearray, extra: int) -> str:
    text = bytes(head).decode("utf-8", "replace").rstrip("\r")
    return f"{text}... [{extra} more bytes of this line not shown]" if extra else text


def _api_timeout() -> float:
    """API_TIMEOUT_S, or REPLAY_ENGINE_TIMEOUT seconds where it is set to a positive number."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV, ""))
    except ValueError:
        return API_TIMEOUT_S
    return value if 0 < value < 86400 else API_TIMEOUT_S


def _short(exc: BaseException, timeout: float | None = None) -> str:
    """One line from a docker-py error, without the URL noise."""
    text = str(exc)
    if "timed out" in text or "Timeout" in type(exc).__name__:
        within = f" within {timeout:g} s" if timeout else ""
        return f"it accepted the connection but did not answer{within}"
    explanation = getattr(exc, "explanation", None)
    if explanation:
        text = explanation.decode() if isinstance(explanation, bytes) else str(explanation)
    if "Connection aborted" in text or "FileNotFoundError" in text or "No such file" in text:
        return "cannot reach the engine's socket"
    if "Connection refused" in text:
        return "the engine's address refuses connections"
    with contextlib.suppress(ValueError):
        text = json.loads(text).get("message", text)
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
