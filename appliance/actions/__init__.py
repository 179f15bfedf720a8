"""The long operations (`up`, `down`, `status`): ordered lists of small, idempotent steps over one
`Context`, each reported through `appliance.progress` (the kind create flow is the model).
"""
