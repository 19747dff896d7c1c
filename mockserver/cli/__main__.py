import sys

from qcog_mock.mockserver.cli.main import main

main(sys.argv[1:])
