"""The IAM query API subset the AWS CLI and SDKs speak, served on the S3 port for a tenant's
admin acting inside its own tenant.

Wire format (https://docs.aws.amazon.com/IAM/latest/APIReference/): ``POST /`` with a
form-encoded body ``Action=CreateUser&Version=2010-05-08&UserName=...``, signed with SigV4 for
the service ``iam``; answers are XML in the ``https://iam.amazonaws.com/doc/2010-05-08/``
namespace (``<CreateUserResponse><CreateUserResult>...``), errors an ``<ErrorResponse>``.
``app`` authenticates and dispatches, ``actions`` has one function per IAM action.
"""
