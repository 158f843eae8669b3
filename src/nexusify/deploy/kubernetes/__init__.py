"""The Kubernetes target of ``deploy``: an environment with ``kubernetes = { context, namespace }``.

Per service: a Deployment per color (``<service>-blue``, ``<service>-green``), a Service whose
selector's ``color`` is the switch, a Secret per color made from the secrets provider at apply time
(values on kubectl's stdin only), and for migrations a ConfigMap of the scripts and a Job of the new
image. Plans are data: :mod:`.names` (object names and labels), :mod:`.manifests` (the objects),
:mod:`.steps` (the kubectl steps), :mod:`.runner` (runs them), :mod:`.target` (dry-run and deploy),
:mod:`.cluster` (what runs, read from kubectl's JSON), :mod:`.rollback` (the selector back to the
kept color), :mod:`.status`, and :mod:`.history` (the records in the ConfigMap ``nexusify-history``).
"""
