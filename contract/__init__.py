"""The bottom layer that the bot and the workers share: nothing here imports `bot` or `workers`.

- `settings`: the one typed `Settings` object (environment / `.env`).
- `keys`: every Redis key and queue name.
- `records`: typed records of a study (participants, battles, limits, refusals).
- `protocol`: what travels between the bot and the workers (`JobRequest`, `ResultMessage`).
- `modelsfile`: the models file (TOML) and its validation.
- `queueing`: the one module that imports `rq` (enqueue, job snapshots, retiring, the worker).
- `heartbeat`: the workers' heartbeat record (`WorkerEntry`) and `live_workers`.
- `audio`: probing, decoding and normalising participants' audio (PyAV; no torch).
"""
