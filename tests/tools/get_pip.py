"""Stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test fetches get-pip.py from a host this machine cannot reach. It runs the script
with the venv's Python and pip options as arguments; ensurepip gives the same result from
the standard library, then pip installs the exact packages ansible-test asked for.
"""
import subprocess
import sys


def main():
    # ensurepip in a child process: in-process it points PIP_CONFIG_FILE at /dev/null for the
    # rest of the process, which would hide the machine's pip configuration (index, CA file).
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
    args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
    subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)


if __name__ == '__main__':
    main()
