"""A stub of the CDS services (VizieR and SIMBAD TAP) on 127.0.0.1 for tests.

The real astroquery clients talk HTTP to it (see ``glue_zeropoint.catalogs.services`` for how
their URLs are overridden through ``GLUE_ZEROPOINT_VIZIER_URL``/``GLUE_ZEROPOINT_SIMBAD_URL``).
It answers

* ``POST /viz-bin/votable`` (astroquery's VizieR body of ``-key=value`` lines) with the answer
  set for the ``-source`` catalog: recorded bytes (``tests/data/cds/*.xml``) or a table (a
  simulated field, :class:`StarField`, or a synthetic answer read with :func:`read_votable`)
  cut to the cone (``-c``, ``-c.rd/rm/rs``), the columns (``-out``: the named columns the table
  has, unknown names dropped silently as VizieR does; ``*`` keeps the table's columns) and
  the row limit (``-out.max``, with VizieR's ``QUERY_STATUS=OVERFLOW`` INFO when cut);
* ``GET /simbad/sim-tap/capabilities`` (a minimal TAP capabilities document);
* ``POST /simbad/sim-tap/sync`` (pyvo's form: ``REQUEST``, ``LANG``, ``QUERY``) with answers
  to astroquery's metadata queries (derived from the recorded ``simbad_output_options.xml``
  and ``simbad_basic_columns.xml``) and, for a cone (``CONTAINS(POINT...CIRCLE...)``), the
  SIMBAD field set with :meth:`CDSStub.set_simbad` cut to the circle.

Failures are injected with :meth:`CDSStub.fail` (``'http500'``, ``'http429'``, ``'timeout'``,
``'truncated'``, ``'garbage'``, ``'reset'``). Everything received is in ``.requests``.
"""

import io
import re
import threading
import time
import urllib.parse
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from astropy.io.votable import parse_single_table
from astropy.io.votable.tree import Info, Resource, VOTableFile
from astropy.io.votable.tree import TableElement as VOTable
from astropy.table import Table

DATA = Path(__file__).parent / "data" / "cds"

__all__ = ["CDSStub", "StarField", "vizier_votable", "simbad_votable"]


# --------------------------------------------------------------------------- VOTable writers


def _votable_bytes(table, *, resource_name, table_name, infos=(), resource_type="results",
                   description=None):
    votable = VOTableFile()
    resource = Resource(name=resource_name, type=resource_type)
    votable.resources.append(resource)
    for name, value, text in infos:
        info = Info(name=name, value=value)
        if text:
            info.content = text
        resource.infos.append(info)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vot = VOTable.from_table(votable, table)
    vot.name = table_name
    vot.ID = re.sub(r"[^A-Za-z0-9_]", "_", table_name)
    for field in vot.fields:
        field.ID = None
    if description:
        vot.description = description
    resource.tables.append(vot)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        votable.to_xml(buffer)
    return buffer.getvalue()


def vizier_votable(table, catalog_id, *, params=None, overflow=False):
    """A VizieR-like VOTable answer (resource = the catalog, table name = the table id)."""
    infos = []
    if params:
        infos.append(("queryParameters", str(len(params)),
                      "\n".join(f"{k}={v}" for k, v in params.items())))
    if overflow:
        infos.append(("QUERY_STATUS", "OVERFLOW",
                      f"truncated result (maxtup={params.get('-out.max') if params else '?'})"))
    return _votable_bytes(table, resource_name=catalog_id.rsplit("/", 1)[0],
                          table_name=catalog_id, infos=infos, resource_type="results")


def simbad_votable(table, query=""):
    """A SIMBAD TAP-like answer (QUERY_STATUS OK, the ADQL in an INFO)."""
    return _votable_bytes(table, resource_name="", table_name="result_S0",
                          infos=[("QUERY_STATUS", "OK", ""), ("QUERY", query, "")])


CAPABILITIES = """<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"
 xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0"
 xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"
 xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">
  <interface role="std" xsi:type="vs:ParamHTTP">
   <accessURL use="base">{base}/simbad/sim-tap</accessURL>
  </interface>
  <language><name>ADQL</name><version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>
  </language>
  <outputFormat><mime>application/x-votable+xml</mime></outputFormat>
  <executionDuration><default>1080</default><hard>1080</hard></executionDuration>
  <outputLimit><default unit="row">10000</default><hard unit="row">2000000</hard></outputLimit>
  <uploadLimit><default unit="row">200000</default><hard unit="row">200000</hard></uploadLimit>
 </capability>
</vosi:capabilities>
"""


# --------------------------------------------------------------------------- simulated fields


class StarField:
    """Stars of a simulated field with true magnitudes, in the formats of several catalogs.

    Parameters
    ----------
    ra, dec : float
        Centre (degrees).
    radius : float
        Radius of the populated disc (degrees).
    n : int
        Number of stars.
    seed : int
    """

    def __init__(self, ra, dec, radius=0.2, n=60, seed=1):
        rng = np.random.default_rng(seed)
        r = radius * np.sqrt(rng.uniform(0, 1, n))
        theta = rng.uniform(0, 2 * np.pi, n)
        self.ra = ra + r * np.cos(theta) / np.cos(np.radians(dec))
        self.dec = dec + r * np.sin(theta)
        self.V = rng.uniform(10.0, 16.5, n)
        self.BV = rng.uniform(0.2, 1.4, n)
        self.B = self.V + self.BV
        self.R = self.V - 0.55 * self.BV
        self.I = self.V - 1.1 * self.BV
        self.g = self.V + 0.6 * self.BV - 0.12
        self.r = self.V - 0.42 * self.BV + 0.11
        self.i = self.r - 0.3 * self.BV
        self.z = self.i - 0.2 * self.BV
        self.pmra = rng.normal(0, 8, n)
        self.pmdec = rng.normal(0, 8, n)
        self.source = (4_000_000_000_000 + np.arange(n) * 7919).astype(np.int64)
        self.variable = np.zeros(n, bool)
        self.variable[::17] = True
        self.n = n

    def apass(self):
        t = Table()
        t["recno"] = np.arange(1, self.n + 1, dtype=np.int32)
        t["RAJ2000"] = self.ra
        t["DEJ2000"] = self.dec
        t["RAJ2000"].unit = t["DEJ2000"].unit = "deg"
        t["Field"] = np.full(self.n, 20110101, dtype=np.int32)
        t["nobs"] = np.full(self.n, 3, dtype=np.int16)
        t["B-V"] = np.round(self.BV, 3)
        t["e_B-V"] = np.full(self.n, 0.03)
        t["Vmag"] = np.round(self.V, 3)
        t["e_Vmag"] = np.full(self.n, 0.02)
        t["Bmag"] = np.round(self.B, 3)
        t["e_Bmag"] = np.full(self.n, 0.025)
        t["g'mag"] = np.round(self.g, 3)
        t["e_g'mag"] = np.full(self.n, 0.02)
        t["r'mag"] = np.round(self.r, 3)
        t["e_r'mag"] = np.full(self.n, 0.02)
        t["i'mag"] = np.round(self.i, 3)
        t["e_i'mag"] = np.full(self.n, 0.03)
        for c in t.colnames:
            if c.endswith("mag") or c.endswith("B-V"):
                t[c].unit = "mag"
        return t

    def syntphot(self):
        t = Table()
        t["Source"] = self.source
        t["RA_ICRS"] = self.ra
        t["DE_ICRS"] = self.dec
        t["RA_ICRS"].unit = t["DE_ICRS"].unit = "deg"
        for band in ("U", "B", "V", "R", "I", "u", "g", "r", "i", "z"):
            mag = getattr(self, band, None)
            if mag is None:
                mag = self.B + 0.3 if band == "U" else self.g + 1.0
            flux = 10 ** (-0.4 * (mag + 48.6)) * 1e3  # W/m2/Hz-ish: only ratios matter
            t[f"F{band}"] = flux
            t[f"e_F{band}"] = flux * 0.01
            t[f"{band}mag"] = np.round(mag, 4)
            t[f"{band}mag"].unit = "mag"
            t[f"{band}Flag"] = np.ones(self.n, dtype=np.int16)
        t["UFlag"][:] = 0  # U outside the validated range for all
        return t

    def gaiadr3(self):
        t = Table()
        t["Source"] = self.source
        t["RA_ICRS"] = self.ra
        t["DE_ICRS"] = self.dec
        t["RA_ICRS"].unit = t["DE_ICRS"].unit = "deg"
        t["Gmag"] = np.round(self.V - 0.3 * self.BV, 4)
        t["pmRA"] = self.pmra
        t["pmDE"] = self.pmdec
        t["pmRA"].unit = t["pmDE"].unit = "mas / yr"
        t["VarFlag"] = np.where(self.variable, "VARIABLE", "NOT_AVAILABLE")
        return t

    def refcat2(self):
        t = Table()
        t["RA_ICRS"] = self.ra
        t["DE_ICRS"] = self.dec
        t["RA_ICRS"].unit = t["DE_ICRS"].unit = "deg"
        t["pmRA"] = self.pmra
        t["pmDE"] = self.pmdec
        for band in "griz":
            t[f"{band}mag"] = np.round(getattr(self, band), 3)
            t[f"e_{band}mag"] = np.full(self.n, 0.01)
        t["dupvar"] = np.where(self.variable, 1, 0).astype(np.int16)
        return t

    def simbad(self, n=None):
        n = self.n if n is None else n
        t = Table()
        t["main_id"] = np.array([f"TYC {1000 + k}-{k % 97}-1" for k in range(n)])
        t["ra"] = self.ra[:n]
        t["dec"] = self.dec[:n]
        t["ra"].unit = t["dec"].unit = "deg"
        t["coo_err_maj"] = np.full(n, 10.0, dtype=np.float32)
        t["otype"] = np.array(["*"] * n, dtype="<U8")
        t["otype"][self.variable[:n]] = "RR*"
        t["otype"][1] = "G"
        for band in ("B", "V", "R", "I"):
            t[band] = np.round(getattr(self, band)[:n], 3).astype(np.float32)
        return t


# --------------------------------------------------------------------------- server


def _parse_vizier_body(body):
    params = {}
    for line in body.splitlines():
        if not line:
            continue
        key, _, value = line.partition("=")
        params[key] = value
    return params


def _cone_from_vizier(params):
    text = params.get("-c", "")
    match = re.match(r"^\s*([0-9.]+)\s*([+-][0-9.]+)", text)
    if match is None:
        return None
    ra, dec = float(match.group(1)), float(match.group(2))
    for key, scale in (("-c.rd", 1.0), ("-c.rm", 1 / 60.0), ("-c.rs", 1 / 3600.0)):
        if key in params:
            return ra, dec, float(params[key]) * scale
    return ra, dec, None


def _sep_deg(ra1, dec1, ra2, dec2):
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    s = (np.sin((dec2 - dec1) / 2) ** 2
         + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(s, 0, 1))))


def _degrees(table, ra_col, dec_col):
    """Positions in degrees; sexagesimal string columns ("hh mm ss.s") are read too."""
    if table[ra_col].dtype.kind in "USO":
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        coords = SkyCoord([str(v) for v in table[ra_col]], [str(v) for v in table[dec_col]],
                          unit=(u.hourangle, u.deg))
        return coords.ra.deg, coords.dec.deg
    return np.asarray(table[ra_col], float), np.asarray(table[dec_col], float)


def _cone_cut(table, ra_col, dec_col, ra, dec, radius):
    if radius is None or len(table) == 0:
        return table
    sep = _sep_deg(ra, dec, *_degrees(table, ra_col, dec_col))
    return table[sep <= radius]


_CIRCLE_RE = re.compile(r"CIRCLE\('ICRS',\s*([-+0-9.eE]+),\s*([-+0-9.eE]+),\s*([-+0-9.eE]+)\)")
_TOP_RE = re.compile(r"SELECT\s+(?:DISTINCT\s+)?TOP\s+(\d+)", re.I)


class CDSStub:
    """The stub server. Use as a context manager or call :meth:`start`/:meth:`stop`.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>`` (base URL for both services).
    requests : list of dict
        Every request received: ``method``, ``path``, ``body`` (str), ``params`` (VizieR
        ``-key`` lines or the TAP form fields), ``service`` (``'vizier'``/``'simbad'``).
    held : int
        Requests a ``'timeout'`` failure is holding right now (not yet answered): a client
        that gave up in time raises while its request is still held.
    """

    def __init__(self):
        self.requests = []
        self.held = 0
        self._vizier = {}
        self._simbad = None
        self._failures = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = None
        self._thread = None
        self.url = None

    # ---- answers
    def set_vizier(self, catalog_id, answer, *, ra_col="RAJ2000", dec_col="DEJ2000"):
        """Answer VizieR queries of ``catalog_id`` with ``answer``.

        ``answer`` is bytes (served as is: a recorded answer), a Table (cut to the cone,
        columns and row limit like VizieR does, written as a VizieR VOTable) or a callable
        ``(params) -> bytes``.
        """
        self._vizier[catalog_id] = (answer, ra_col, dec_col)

    def set_vizier_file(self, catalog_id, filename):
        self.set_vizier(catalog_id, (DATA / filename).read_bytes())

    def set_simbad(self, answer):
        """Answer SIMBAD cone queries with a Table (cut to the ADQL circle) or bytes."""
        self._simbad = answer

    def fail(self, mode, *, times=None, service=None, delay=5.0, status=None, match=None):
        """Inject a failure for the next ``times`` requests (all when None).

        ``mode``: ``'http500'``, ``'http429'``, ``'timeout'`` (answer after ``delay`` s),
        ``'truncated'`` (cut the VOTable in the middle), ``'garbage'`` (an HTML page),
        ``'reset'`` (close the connection without an answer). ``service`` limits it to
        ``'vizier'`` or ``'simbad'``; ``match`` to requests whose body or path contains it
        (e.g. ``'CONTAINS'`` for the SIMBAD cone query, ``'-source=I/355'``).
        """
        with self._lock:
            self._failures.append({"mode": mode, "times": times, "service": service,
                                   "delay": delay, "status": status, "match": match})

    def clear_failures(self):
        with self._lock:
            self._failures.clear()

    def _next_failure(self, service, text):
        with self._lock:
            for failure in self._failures:
                if failure["service"] not in (None, service):
                    continue
                if failure["match"] is not None and failure["match"] not in text:
                    continue
                if failure["times"] is not None:
                    if failure["times"] <= 0:
                        continue
                    failure["times"] -= 1
                return failure
        return None

    # ---- server life
    def start(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stub._handle(self, "GET")

            def do_POST(self):
                stub._handle(self, "POST")

        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def release(self):
        """Answer now the requests held by a ``'timeout'`` failure (their delay cut short)."""
        self._release.set()

    def stop(self):
        """Stop serving; the port then refuses connections."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- request handling
    def vizier_requests(self):
        return [r for r in self.requests if r["service"] == "vizier"]

    def simbad_queries(self):
        """The ADQL of every SIMBAD sync query received."""
        return [r["params"].get("QUERY", "") for r in self.requests
                if r["service"] == "simbad" and r["path"].endswith("/sync")]

    def _handle(self, handler, method):
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = raw.decode("utf-8", "replace")
        path = urllib.parse.urlsplit(handler.path).path
        if path.startswith("/viz-bin/"):
            service, params = "vizier", _parse_vizier_body(body)
        elif path.startswith("/simbad/"):
            service = "simbad"
            params = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
            params.update({k: v[0] for k, v in query.items()})
        else:
            service, params = "other", {}
        self.requests.append({"method": method, "path": path, "body": body, "params": params,
                              "service": service,
                              "headers": dict(handler.headers.items())})
        failure = self._next_failure(service, f"{handler.path}\n{body}")
        if failure is not None:
            mode = failure["mode"]
            if mode == "timeout":
                with self._lock:
                    self.held += 1
                try:
                    self._release.wait(failure["delay"])
                finally:
                    with self._lock:
                        self.held -= 1
            elif mode == "reset":
                handler.close_connection = True
                handler.wfile.flush()
                handler.connection.shutdown(2)
                return
            elif mode in ("http500", "http429", "http"):
                status = failure["status"] or (500 if mode == "http500" else 429)
                headers = {"Retry-After": "30"} if status == 429 else {}
                return self._send(handler, status, b"<html><body>Server error</body></html>",
                                  "text/html", headers)
            elif mode == "garbage":
                return self._send(handler, 200, b"<html><body>maintenance</body></html>",
                                  "text/html")
        try:
            if service == "vizier":
                payload = self._vizier_answer(params)
            elif service == "simbad":
                payload = self._simbad_answer(path, params)
            else:
                return self._send(handler, 404, b"not found", "text/plain")
        except KeyError as err:
            return self._send(handler, 404, f"no stub answer for {err}".encode(), "text/plain")
        if failure is not None and failure["mode"] == "truncated":
            payload = payload[: max(len(payload) // 2, 10)]
        content_type = "text/xml" if path.endswith("capabilities") else \
            "application/x-votable+xml"
        self._send(handler, 200, payload, content_type)

    @staticmethod
    def _send(handler, status, payload, content_type, headers=None):
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def _vizier_answer(self, params):
        source = params.get("-source", "")
        if source not in self._vizier:
            raise KeyError(source)
        answer, ra_col, dec_col = self._vizier[source]
        if isinstance(answer, bytes):
            return answer
        if callable(answer):
            return answer(params)
        table = answer
        cone = _cone_from_vizier(params)
        if cone is not None:
            table = _cone_cut(table, ra_col, dec_col, *cone)
        out = params.get("-out")
        if out and "-out.all" not in params and "*" not in out.split(","):
            # like VizieR: the named columns it has, an unknown name dropped without a word
            # ('*' = the default set, which the stub's table stands for: all of it is kept)
            keep = [c for c in out.split(",") if c in table.colnames]
            if keep:
                table = table[keep]
        for key, value in params.items():  # simple column filters like Gmag=<18
            if key in table.colnames and value.startswith("<"):
                table = table[np.asarray(table[key], float) < float(value[1:])]
        limit = params.get("-out.max", "50")
        overflow = False
        if limit != "unlimited" and len(table) > int(limit):
            table = table[: int(limit)]
            overflow = True
        if len(table) == 0:  # VizieR sends a resource without a table
            return _EMPTY_VIZIER
        return vizier_votable(table, source, params=params, overflow=overflow)

    def _simbad_answer(self, path, params):
        if path.endswith("/capabilities"):
            return CAPABILITIES.format(base=self.url).encode()
        query = params.get("QUERY", "")
        if "TAP_SCHEMA.keys" in query:
            options = parse_single_table(DATA / "simbad_output_options.xml").to_table()
            tables = options[options["type"] == "table"]["name", "description"]
            return simbad_votable(Table(tables), query)
        if "TAP_SCHEMA.columns" in query:
            return (DATA / "simbad_basic_columns.xml").read_bytes()
        if "FROM filter" in query:
            options = parse_single_table(DATA / "simbad_output_options.xml").to_table()
            filters = options[options["type"] == "filter name"]["name", "description"]
            return simbad_votable(Table(filters), query)
        circle = _CIRCLE_RE.search(query)
        if circle is None or self._simbad is None:
            raise KeyError(query[:80])
        if isinstance(self._simbad, bytes):
            return self._simbad
        table = _cone_cut(self._simbad, "ra", "dec", *map(float, circle.groups()))
        top = _TOP_RE.search(query)
        if top is not None:
            table = table[: int(top.group(1))]
        return simbad_votable(table, query)


_EMPTY_VIZIER = b"""<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
 <DESCRIPTION>VizieR Astronomical Server (stub)</DESCRIPTION>
 <INFO ID="MaxTuples" name="-out.max" value="50"/>
 <RESOURCE ID="yCat" name="stub">
 </RESOURCE>
</VOTABLE>
"""


def wait_until(predicate, timeout=2.0):
    """Poll ``predicate`` until true (helper for tests of background work)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False
