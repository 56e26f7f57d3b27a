"""The EC2 VPC subset with boto3 and the aws CLI (every answer checked against botocore's `ec2` model, the XML
included): the default VPC with its subnets and security group, VPCs, subnets, security groups and their rules,
tags, filters and pages, and EC2's errors.
"""

import botocore.exceptions
import pytest

from helpers import unique


@pytest.fixture
def ec2(boto_client):
    return boto_client("ec2")


def error_code(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kwargs)
    return e.value.response["Error"]["Code"]


@pytest.fixture
def vpc(ec2):
    """A VPC of 10.0.0.0/16 made for the test, deleted with what is left in it at the end."""
    v = ec2.create_vpc(CidrBlock="10.0.0.0/16",
                       TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": unique("vpc")}]}])["Vpc"]
    yield v
    vpc_filter = [{"Name": "vpc-id", "Values": [v["VpcId"]]}]
    for s in ec2.describe_subnets(Filters=vpc_filter)["Subnets"]:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    groups = [g for g in ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"] if g["GroupName"] != "default"]
    for g in groups:  # rules referencing other groups first, so that the groups can go
        for direction, perms in (("ingress", g["IpPermissions"]), ("egress", g["IpPermissionsEgress"])):
            if any(p["UserIdGroupPairs"] for p in perms):
                revoke = ec2.revoke_security_group_ingress if direction == "ingress" else ec2.revoke_security_group_egress
                revoke(GroupId=g["GroupId"], IpPermissions=perms)
    for g in groups:
        ec2.delete_security_group(GroupId=g["GroupId"])
    ec2.delete_vpc(VpcId=v["VpcId"])


def test_the_default_vpc_its_subnets_zones_and_account_attributes(ec2, aws):
    [default] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert default["CidrBlock"] == "172.31.0.0/16" and default["State"] == "available" and default["IsDefault"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default["VpcId"]]}])["Subnets"]
    assert sorted((s["AvailabilityZone"], s["CidrBlock"]) for s in subnets) == [
        ("us-east-1a", "172.31.0.0/20"), ("us-east-1b", "172.31.16.0/20"), ("us-east-1c", "172.31.32.0/20")]
    # A /20 less AWS's five reserved addresses, less the tasks' interfaces (the server is shared by the suite).
    for s in subnets:
        taken = len(ec2.describe_network_interfaces(
            Filters=[{"Name": "subnet-id", "Values": [s["SubnetId"]]}])["NetworkInterfaces"])
        assert s["DefaultForAz"] and s["AvailableIpAddressCount"] == 4091 - taken
    [group] = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [default["VpcId"]]},
                                                    {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    # The default group lets its own members in and everything out.
    assert group["IpPermissions"][0]["IpProtocol"] == "-1"
    assert group["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == group["GroupId"]
    assert group["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    # By name alone, a group is found in the default VPC.
    assert ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"] == group["GroupId"]

    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"], z["State"]) for z in zones] == [
        ("us-east-1a", "use1-az1", "available"), ("us-east-1b", "use1-az2", "available"),
        ("us-east-1c", "use1-az3", "available")]
    attrs = {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
             for a in ec2.describe_account_attributes()["AccountAttributes"]}
    assert attrs["default-vpc"] == [default["VpcId"]] and attrs["supported-platforms"] == ["VPC"]
    # The aws CLI reads the same.
    out = aws("ec2", "describe-vpcs", "--filters", "Name=is-default,Values=true")
    assert out["Vpcs"][0]["VpcId"] == default["VpcId"]
    # EC2 resources Gantry has none of are empty lists, not errors.
    assert ec2.describe_instances()["Reservations"] == []
    assert ec2.describe_route_tables()["RouteTables"] == []
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []


def test_vpcs_and_subnets_with_filters_pages_and_errors(ec2, vpc):
    vpc_id = vpc["VpcId"]
    assert vpc["CidrBlock"] == "10.0.0.0/16" and not vpc["IsDefault"]
    name = vpc["Tags"][0]["Value"]
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"][0]["VpcId"] == vpc_id
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["vpc-nobody*"]}])["Vpcs"] == []
    made = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]
            for i, z in enumerate("abcab")]
    assert made[0]["AvailableIpAddressCount"] == 251 and made[0]["State"] == "available"
    small = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.100.0/28", AvailabilityZoneId="use1-az3")["Subnet"]
    assert (small["AvailableIpAddressCount"], small["AvailabilityZone"]) == (11, "us-east-1c")
    in_a = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                         {"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in in_a) == ["10.0.0.0/24", "10.0.3.0/24"]
    # Pages: five, then the last one.
    f = [{"Name": "vpc-id", "Values": [vpc_id]}]
    first = ec2.describe_subnets(Filters=f, MaxResults=5)
    second = ec2.describe_subnets(Filters=f, MaxResults=5, NextToken=first["NextToken"])
    assert len(first["Subnets"]) == 5 and len(second["Subnets"]) == 1 and "NextToken" not in second
    assert {s["SubnetId"] for s in first["Subnets"] + second["Subnets"]} == {s["SubnetId"] for s in made + [small]}

    assert error_code(ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.0.0.128/25") == "InvalidSubnet.Conflict"
    assert error_code(ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.1.0.0/24") == "InvalidSubnet.Range"
    assert error_code(ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.0.200.0/29") == "InvalidSubnet.Range"
    assert error_code(ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.0.201.0/24",
                      AvailabilityZone="us-east-1z") == "InvalidParameterValue"
    assert error_code(ec2.create_subnet, VpcId="vpc-0123456789abcdef0", CidrBlock="10.0.9.0/24") == \
        "InvalidVpcID.NotFound"
    assert error_code(ec2.create_vpc, CidrBlock="10.0.0.1/16") == "InvalidParameterValue"
    assert error_code(ec2.create_vpc, CidrBlock="10.0.0.0/8") == "InvalidVpc.Range"
    assert error_code(ec2.describe_subnets, SubnetIds=["subnet-0123456789abcdef0"]) == "InvalidSubnetID.NotFound"
    assert error_code(ec2.describe_vpcs, Filters=[{"Name": "colour", "Values": ["red"]}]) == "InvalidParameterValue"
    assert error_code(ec2.delete_vpc, VpcId=vpc_id) == "DependencyViolation"
    assert error_code(ec2.create_vpc, CidrBlock="10.9.0.0/16", DryRun=True) == "DryRunOperation"
    ec2.delete_subnet(SubnetId=small["SubnetId"])
    assert error_code(ec2.delete_subnet, SubnetId=small["SubnetId"]) == "InvalidSubnetID.NotFound"


def test_security_groups_and_their_rules(ec2, vpc):
    vpc_id = vpc["VpcId"]
    web = ec2.create_security_group(GroupName="web", Description="web tasks", VpcId=vpc_id)["GroupId"]
    lb = ec2.create_security_group(GroupName="lb", Description="load balancer", VpcId=vpc_id,
                                   TagSpecifications=[{"ResourceType": "security-group",
                                                       "Tags": [{"Key": "role", "Value": "lb"}]}])["GroupId"]
    assert error_code(ec2.create_security_group, GroupName="web", Description="again", VpcId=vpc_id) == \
        "InvalidGroup.Duplicate"
    assert error_code(ec2.create_security_group, GroupName="default", Description="x", VpcId=vpc_id) == \
        "InvalidGroup.Reserved"
    assert error_code(ec2.create_security_group, GroupName="sg-web", Description="x", VpcId=vpc_id) == \
        "InvalidParameterValue"

    added = ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": lb}],
         "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "inside"}]},
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ])
    assert added["Return"] and len(added["SecurityGroupRules"]) == 3
    assert {(r["IpProtocol"], r["FromPort"], r.get("CidrIpv4"), r.get("ReferencedGroupInfo", {}).get("GroupId"))
            for r in added["SecurityGroupRules"]} == {("tcp", 8080, "10.0.0.0/16", None), ("tcp", 8080, None, lb),
                                                      ("udp", 53, "0.0.0.0/0", None)}
    ec2.authorize_security_group_ingress(GroupId=web, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="10.0.5.0/24")
    [g] = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"]
    perms = {(p["IpProtocol"], p.get("FromPort")): p for p in g["IpPermissions"]}
    assert perms[("tcp", 8080)]["IpRanges"] == [{"CidrIp": "10.0.0.0/16", "Description": "inside"}]
    assert perms[("tcp", 8080)]["UserIdGroupPairs"][0]["GroupId"] == lb
    assert set(perms) == {("tcp", 8080), ("udp", 53), ("tcp", 22)}
    assert g["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [web]}])["SecurityGroupRules"]
    assert len(rules) == 5 and sum(r["IsEgress"] for r in rules) == 1

    assert error_code(ec2.authorize_security_group_ingress, GroupId=web, IpProtocol="tcp", FromPort=22, ToPort=22,
                      CidrIp="10.0.5.0/24") == "InvalidPermission.Duplicate"
    for bad in [dict(IpProtocol="tcp", FromPort=90, ToPort=80, IpRanges=[{"CidrIp": "0.0.0.0/0"}]),
                dict(IpProtocol="gre", IpRanges=[{"CidrIp": "0.0.0.0/0"}]),
                dict(IpProtocol="tcp", FromPort=1, ToPort=2, IpRanges=[{"CidrIp": "10.0.0.1/8"}])]:
        assert error_code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[bad]) == \
            "InvalidParameterValue", bad
    assert error_code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]}
    ]) == "InvalidGroup.NotFound"
    assert error_code(ec2.describe_security_groups, GroupIds=["sg-0123456789abcdef0"]) == "InvalidGroup.NotFound"

    # A group that another group's rule names is a dependency.
    assert error_code(ec2.delete_security_group, GroupId=lb) == "DependencyViolation"
    revoked = ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": lb}]}])
    assert revoked["Return"] and revoked["RevokedSecurityGroupRules"][0]["ReferencedGroupId"] == lb
    assert error_code(ec2.revoke_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": lb}]}]) == \
        "InvalidPermission.NotFound"
    rule_22 = next(r for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [web]}])
                   ["SecurityGroupRules"] if r.get("FromPort") == 22)
    ec2.revoke_security_group_ingress(GroupId=web, SecurityGroupRuleIds=[rule_22["SecurityGroupRuleId"]])
    ec2.revoke_security_group_egress(GroupId=web, IpPermissions=[{"IpProtocol": "-1",
                                                                  "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    [g] = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"]
    assert {(p["IpProtocol"], p.get("FromPort")) for p in g["IpPermissions"]} == {("tcp", 8080), ("udp", 53)}
    assert g["IpPermissionsEgress"] == []
    ec2.delete_security_group(GroupId=lb)
    [default] = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                      {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert error_code(ec2.delete_security_group, GroupId=default["GroupId"]) == "CannotDelete"


def test_tags_on_vpc_resources(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ec2.create_tags(Resources=[vpc["VpcId"], subnet], Tags=[{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "ci"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [subnet]}])["Tags"]
    assert sorted((t["Key"], t["Value"], t["ResourceType"]) for t in tags) == [
        ("env", "ci", "subnet"), ("team", "web", "subnet")]
    found = ec2.describe_subnets(Filters=[{"Name": "tag:team", "Values": ["web"]}, {"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert [s["SubnetId"] for s in found["Subnets"]] == [subnet]
    # A value that does not match keeps the tag; a key alone removes it.
    ec2.delete_tags(Resources=[subnet], Tags=[{"Key": "team", "Value": "other"}, {"Key": "env"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [subnet]}])["Tags"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("team", "web")]
    assert error_code(ec2.create_tags, Resources=["subnet-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}]) == \
        "InvalidSubnetID.NotFound"
    assert error_code(ec2.create_tags, Resources=[subnet], Tags=[{"Key": "aws:x", "Value": "b"}]) == \
        "InvalidParameterValue"
    assert error_code(ec2.create_tags, Resources=[subnet],
                      Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)]) == "TagLimitExceeded"


def test_vpc_state_survives_kill_9_and_the_default_vpc_is_made_once(gantry, ec2, vpc):
    [default] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    group = ec2.create_security_group(GroupName="kept", Description="kept", VpcId=vpc["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpProtocol="tcp", FromPort=443, ToPort=443, CidrIp="0.0.0.0/0")
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.7.0/24")["Subnet"]["SubnetId"]

    gantry.kill9()
    gantry.start()

    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]] == \
        [default["VpcId"]]
    [g] = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    assert [(p["IpProtocol"], p["FromPort"], p["IpRanges"]) for p in g["IpPermissions"]] == \
        [("tcp", 443, [{"CidrIp": "0.0.0.0/0"}])]
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["CidrBlock"] == "10.0.7.0/24"
