"""Install ser_ros as an ament_python package (robot) or editable into .venv (development)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'ser_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml')),
        (f'share/{PACKAGE}/models', glob('models/*')),
    ],
    include_package_data=True,
    package_data={PACKAGE: ['py.typed']},
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='ser_ros developers',
    maintainer_email='ser-ros@example.org',
    description='Speech emotion recognition (CNN + BLSTM + attention) for the SPRING robot.',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            # ser_ros.console imports each script's module (its SCRIPTS) so that a Ctrl-C while
            # it loads ends the script quietly. ROS 2 nodes (ros2 run ser_ros <name>):
            'microphone_node = ser_ros.console:microphone_node',
            'vad_node = ser_ros.console:vad_node',
            'emotion_node = ser_ros.console:emotion_node',
            'dialogue_policy_node = ser_ros.console:dialogue_policy_node',
            'ser_pipeline = ser_ros.console:ser_pipeline',
            # Offline tools (no ROS needed):
            'ser_predict = ser_ros.console:ser_predict',
            'ser_train = ser_ros.console:ser_train',
            'ser_evaluate = ser_ros.console:ser_evaluate',
            'ser_dataset = ser_ros.console:ser_dataset',
            'ser_bag = ser_ros.console:ser_bag',
            'ser_study = ser_ros.console:ser_study',
            'ser_export = ser_ros.console:ser_export',
            'ser_ensemble = ser_ros.console:ser_ensemble',
        ],
    },
)
