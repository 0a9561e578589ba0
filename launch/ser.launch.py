"""Launch the ser_ros pipeline on the robot: microphone -> VAD -> emotion -> engage.

    ros2 launch ser_ros ser.launch.py
    ros2 launch ser_ros ser.launch.py use_microphone:=false audio_topic:=/audio/channel0
    ros2 launch ser_ros ser.launch.py model_path:=/data/ser.pt device:=cuda use_policy:=false

Which nodes start, their parameters file, the launch arguments and how those reach the nodes
are defined once in ``ser_ros.ros.node_set``; ``ser_pipeline`` starts the same set from the
same definition, so the two cannot drift apart. Node parameters are in ``config/ser.yaml``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from ser_ros.ros import node_set


def generate_launch_description() -> LaunchDescription:
    """Declare the launch arguments and one Node action per node of the node set."""
    actions = [DeclareLaunchArgument(argument.name, default_value=argument.default,
                                     description=argument.description)
               for argument in node_set.LAUNCH_ARGUMENTS]
    actions.append(DeclareLaunchArgument(
        node_set.PARAMS_FILE_ARGUMENT, default_value=str(node_set.default_config_path()),
        description=node_set.PARAMS_FILE_DESCRIPTION))
    params_file = LaunchConfiguration(node_set.PARAMS_FILE_ARGUMENT)
    for spec in node_set.NODES:
        # value_type=str: an empty model_path must stay '' rather than become YAML null.
        overrides = {parameter: ParameterValue(LaunchConfiguration(argument), value_type=str)
                     for parameter, argument in spec.parameter_arguments}
        actions.append(Node(
            package=node_set.PACKAGE,
            executable=spec.executable,
            name=spec.name,
            output='screen',
            emulate_tty=True,
            parameters=[params_file, overrides] if overrides else [params_file],
            remappings=[(topic, LaunchConfiguration(argument))
                        for topic, argument in spec.remap_arguments],
            condition=(IfCondition(LaunchConfiguration(spec.enabled_by))
                       if spec.enabled_by else None),
        ))
    return LaunchDescription(actions)
