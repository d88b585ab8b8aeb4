"""Serving the champion over HTTP, one module per concern.

- ``schemas``  request and response models (what the API accepts and answers)
- ``booster``  LightGBM boosters read through LightGBM's C library (lean workers)
- ``loading``  where the served model comes from: registry, BentoML store, export
- ``scoring``  estimates, batches, explanations and the model card: pure functions
- ``reload``   swapping in a new champion on every worker, all or nothing
- ``gate``     requests held while the workers switch, 503 while a worker has no model
- ``admin_auth`` who may reload: loopback, not relayed, with the reload token
- ``control``  the process manager's control socket, private (unix socket, 0700)
- ``guard``    the ASGI guard: body limits, 415/413/422 answers, keep-alive spreading
- ``openapi``  the OpenAPI document corrected to what the service answers
- ``server``   starting ``bentoml serve`` for `salarymodel serve`

``salarymodel.serving.service`` holds the BentoML service itself and ties these together.
A worker imports none of shap, MLflow, pandas, pandera, matplotlib or
scikit-learn (a test checks): start-up time and memory are per worker.
"""
