"""The template reader: intrinsic functions, Globals merge, conditions, deterministic names (no AWS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon_local.cfn_template import Template, TemplateError, load_template_file

TEMPLATE = """\
Parameters:
  Env: {Type: String, Default: dev}
  Names: {Type: CommaDelimitedList, Default: "a,b,c"}
Mappings:
  Sizes:
    dev: {Memory: 256}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
Globals:
  Function:
    Timeout: 10
    Layers: [!Ref Layer]
    Environment:
      Variables: {A: global, B: global}
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: ../layer/}
  Bucket:
    Type: AWS::S3::Bucket
  ProdOnly:
    Type: AWS::SNS::Topic
    Condition: IsProd
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 20
      Layers: [arn:aws:lambda:us-east-1:1:layer:x:1]
      MemorySize: !FindInMap [Sizes, !Ref Env, Memory]
      Environment:
        Variables:
          B: local
          SUB: !Sub "${AWS::StackName}/${Bucket}/${Bucket.Arn}/${!Literal}/${AWS::Region}"
          SUB_VARS: !Sub ["${X}-y", {X: !Select [1, !Ref Names]}]
          JOINED: !Join [":", !Split [",", "p,q"]]
          ROLE: !GetAtt FnRole.Arn
          MAYBE: !If [IsProd, yes-prod, !Ref AWS::NoValue]
          NOT_PROD: !If [NotProd, "1", "0"]
          DATE: 2024-05-01
"""


def _template(tmp_path: Path, text: str = TEMPLATE) -> Template:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    return Template(path, stack_name="st", region="eu-west-1", account_id="111122223333")


def test_intrinsics_resolve(tmp_path: Path) -> None:
    tpl = _template(tmp_path)
    props = tpl.resolve(tpl.resources["Fn"].properties)
    env = props["Environment"]["Variables"]
    assert env["A"] == "global" and env["B"] == "local"  # Globals merged, local wins
    assert env["SUB"] == "st/st-bucket/arn:aws:s3:::st-bucket/${Literal}/eu-west-1"
    assert env["SUB_VARS"] == "b-y"
    assert env["JOINED"] == "p:q"
    assert env["ROLE"] == "arn:aws:iam::111122223333:role/st-FnRole"
    assert "MAYBE" not in env  # AWS::NoValue removes the key
    assert env["NOT_PROD"] == "1"
    assert env["DATE"] == "2024-05-01"  # dates stay strings, as in CloudFormation
    assert props["Timeout"] == 20
    assert props["MemorySize"] == 256
    assert props["Layers"] == [
        "arn:aws:lambda:eu-west-1:111122223333:layer:st-Layer:1",
        "arn:aws:lambda:us-east-1:1:layer:x:1",
    ]
    assert tpl.get_att("Fn", "Arn") == "arn:aws:lambda:eu-west-1:111122223333:function:st-Fn"


def test_conditions_exclude_resources(tmp_path: Path) -> None:
    tpl = _template(tmp_path)
    assert [r.logical_id for r in tpl.of_type("AWS::SNS::Topic")] == []
    prod = Template(tmp_path / "t.yaml", parameter_overrides={"Env": "prod"})
    assert [r.logical_id for r in prod.of_type("AWS::SNS::Topic")] == ["ProdOnly"]


def test_unknown_reference_and_non_template_fail_clearly(tmp_path: Path) -> None:
    tpl = _template(tmp_path)
    with pytest.raises(TemplateError, match="Nope"):
        tpl.resolve({"Ref": "Nope"})
    (tmp_path / "x.yaml").write_text("a: 1\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="no Resources"):
        load_template_file(tmp_path / "x.yaml")


def test_declared_names_win_and_bucket_names_are_lowercase(tmp_path: Path) -> None:
    text = TEMPLATE.replace(
        "  Bucket:\n    Type: AWS::S3::Bucket\n",
        "  Bucket:\n    Type: AWS::S3::Bucket\n  Named:\n    Type: AWS::S3::Bucket\n"
        "    Properties: {BucketName: !Sub '${AWS::StackName}-named-${AWS::AccountId}'}\n",
    )
    tpl = _template(tmp_path, text)
    assert tpl.ref("Named") == "st-named-111122223333"
    assert tpl.ref("Bucket") == "st-bucket"
