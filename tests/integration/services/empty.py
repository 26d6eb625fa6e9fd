from streamkit import Router

router = Router()  # no handlers: `streamkit run` must refuse it
