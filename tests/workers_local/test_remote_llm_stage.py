"""A mixed pipeline: real Whisper tiny.en in process, the LLM stage on an OpenAI-compatible
server (the local fake of vLLM's API): the transcript is what the server is asked about."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from contract.modelsfile import ModelsFile
from devstack.fake_apis import FakeApiServer
from workers.backends.asr_pipeline import AsrPipelineBackend

pytestmark = pytest.mark.slow

LLM = "meta-llama/Meta-Llama-3-8B-Instruct"


def test_local_whisper_then_remote_llm(demo_models: ModelsFile, speech: np.ndarray) -> None:
    server = FakeApiServer(api_key=None, models=(LLM,)).start()
    try:
        demo = demo_models.get("demo-pipeline")
        spec = dataclasses.replace(
            demo, settings={**demo.settings, "llm_model": LLM, "llm_base_url": server.openai_url}
        )
        backend = AsrPipelineBackend(spec)
        backend.load()
        assert backend.engine == "faster_whisper"
        partials: list[str] = []
        answer = backend.answer(speech, [], partials.append)
        assert "weather" in (answer.transcript or "").lower()
        assert answer.reply == FakeApiServer.reply_to_text(answer.transcript or "", 0)
        assert partials
        (request,) = server.generation_requests()
        assert request["json"]["messages"][-1] == {"role": "user", "content": answer.transcript}
        assert 0 < answer.timings["asr"] < answer.timings["first_token"] <= answer.timings["total"]
        backend.close()
    finally:
        server.stop()
