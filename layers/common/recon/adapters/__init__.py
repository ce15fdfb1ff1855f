"""Implementations of ``recon.ports``: AWS adapters and in-memory fakes.

Import the module you need; this package imports nothing eagerly, so ``recon.adapters.memory`` and
``recon.adapters.errors`` stay free of boto3:

- ``aws``        lazy, cached boto3 clients/resources (honours ``Settings.aws_endpoint_url``)
- ``s3``         ``S3ObjectStore``                       (ObjectStore)
- ``dynamodb``   ``DynamoRunRepository``                 (RunRepository, single-table design)
- ``notify``     ``SesMailer``, ``SnsAlertPublisher``    (Mailer, AlertPublisher)
- ``workflow``   ``StepFunctionsStarter``                (WorkflowStarter)
- ``memory``     in-memory fakes of all of the above, with the same semantics
- ``errors``     exceptions raised by adapters and fakes alike
"""
