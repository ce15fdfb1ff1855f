"""Provider connectors: pull a statement for (account, bill date) from Alipay, WeChat Pay or a bank.

Pure protocol code over an ``httpx.Client`` (or an SFTP session): no boto3, no AWS. Credentials come in as
arguments (loaded from Secrets Manager by the pipeline), never from the environment.
"""
