"""The development stack that `make demo`, the benchmarks and the tests share.

Never imported by `bot`, `workers`, `analysis` or `contract`; never imports `tests`.

- `standin/`: a local Discord (REST + gateway) that the real discord.py client talks to.
- `harness`: the whole stack as processes (Redis, stand-in, fake model API, bot, worker).
- `redis_servers`: private `redis-server` processes in temp dirs.
- `clips`: speech from espeak-ng re-encoded into what participants send.
- `fake_apis`: local servers that speak OpenAI's and Gemini's HTTP APIs.
- `driver`: `StudyDriver`, which plays participants and moderators through the stand-in.
- `helpers`: plain readers over the stand-in's state and the study's Redis.
"""
