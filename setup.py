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
            # ROS 2 nodes (ros2 run ser_ros <name>)
            'microphone_node = ser_ros.ros.microphone_node:main',
            'vad_node = ser_ros.ros.vad_node:main',
            'emotion_node = ser_ros.ros.emotion_node:main',
            'dialogue_policy_node = ser_ros.ros.dialogue_policy_node:main',
            'ser_pipeline = ser_ros.ros.pipeline:main',
            # Offline tools (no ROS needed)
            'ser_predict = ser_ros.cli.predict:main',
            'ser_train = ser_ros.cli.train:main',
            'ser_evaluate = ser_ros.cli.evaluate:main',
            'ser_dataset = ser_ros.cli.dataset:main',
            'ser_bag = ser_ros.cli.bag:main',
            'ser_study = ser_ros.cli.study:main',
            'ser_export = ser_ros.cli.export:main',
        ],
    },
)
